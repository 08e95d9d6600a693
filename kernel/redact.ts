// Secrets never printed: URLs lose their user-info (user:password@) and the values of query
// parameters that look like credentials, wherever Vigil prints or stores them (logs, error
// messages, dead-letter headers).

const SECRET_PARAM = /^(.*[-_])?(key|token|secret|password|passwd|pwd|auth|authorization|signature|sig|credential|credentials|apikey|api_key|access_token)$/i;

/** A URL with its user-info and secret-looking query parameters replaced by '***'; the rest as written. */
export function redactUrl(url: string): string {
  return redactText(url);
}

/** Every URL in a text (an error message quoting one) with its user-info redacted. */
export function redactText(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]*@/gi, '$1***@').replace(/([?&])([^=&\s]+)=([^&\s]*)/g, (m, sep: string, k: string) => (SECRET_PARAM.test(k) ? `${sep}${k}=***` : m));
}

/** The user-info of a URL (for an HTTP client's basic auth), and the URL without it. */
export function splitUserInfo(url: string): { url: string; auth?: { username: string; password: string } } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { url };
  }
  if (u.username === '' && u.password === '') return { url };
  const auth = { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
  u.username = '';
  u.password = '';
  return { url: u.toString().replace(/\/$/, ''), auth };
}
