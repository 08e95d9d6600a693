// Names Vigil generates for operators' output schemas.

/** The generated output record's fullname: vigil.generated.<OperatorNameInPascalCase>. */
export function generatedSchemaName(operatorName: string): string {
  const pascal = operatorName
    .split(/[^A-Za-z0-9]+/)
    .filter((p) => p !== '')
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
  return `vigil.generated.${/^[A-Za-z_]/.test(pascal) ? pascal : `M${pascal}`}`;
}
