// The part of ml-regression (which ships no type declarations) that the predict operator uses.
declare module 'ml-regression' {
  export class PolynomialRegression {
    constructor(x: number[], y: number[], degree: number);
    readonly coefficients: number[];
    predict(x: number): number;
  }
  export class TheilSenRegression {
    constructor(x: number[], y: number[]);
    readonly slope: number;
    readonly intercept: number;
    predict(x: number): number;
  }
  /** y = B e^(A x). */
  export class ExponentialRegression {
    constructor(x: number[], y: number[]);
    readonly A: number;
    readonly B: number;
    predict(x: number): number;
  }
}
