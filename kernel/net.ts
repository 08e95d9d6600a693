// Where a local HTTP server is reached (the metrics server, the embedded registry).

/** The http URL of a server listening on `address`: loopback when it listens on every interface, IPv6 in brackets. */
export function advertisedUrl(address: string, port: number): string {
  const host = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
