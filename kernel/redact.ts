// Secrets never printed: URLs lose their user-info (user:password@) and the values of query
// parameters that look like credentials, wherever Vigil prints or stores them (logs, error
// messages, dead-letter headers), and secrets compared in constant time.
import { timingSafeEqual } from 'node:crypto';

const SECRET_PARAM = /^(.*[-_])?(key|token|secret|password|passwd|pwd|auth|authorization|signature|sig|credential|credentials|apikey|api_key|access_token)$/i;

/**
 * A text (a URL, an error message quoting URLs) with every URL's user-info and the values of its
 * secret-looking query parameters replaced by '***'; the rest as written.
 */
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

/** Whether a secret given by a client (a token, an Authorization header) is the expected one, in constant time. */
export function sameSecret(given: string | undefined, want: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}
