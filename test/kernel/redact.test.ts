// Secrets in URLs never printed: user-info and credential-like query parameters are redacted, in a
// URL and in any text quoting one; user-info splits off for basic auth.
import { describe, expect, it } from 'vitest';
import { redactText, sameSecret, splitUserInfo } from '../../kernel/redact.ts';

describe('redaction', () => {
  it('redacts user-info and secret query parameters of a URL, and leaves a plain URL as it is', () => {
    expect(redactText('https://svc:p%40ss@registry.example.com:8081/')).toBe('https://***@registry.example.com:8081/');
    expect(redactText('https://hooks.example.com/x?api_key=abc&channel=ops&token=t')).toBe('https://hooks.example.com/x?api_key=***&channel=ops&token=***');
    expect(redactText('http://127.0.0.1:8081')).toBe('http://127.0.0.1:8081');
    expect(redactText('not a url user:pw@host')).toBe('not a url user:pw@host');
  });

  it('redacts every URL quoted in a text (error messages)', () => {
    const msg = 'schema registry at http://alice:S3cret@10.0.0.1:8081 is unavailable: GET http://alice:S3cret@10.0.0.1:8081/schemas/ids/7?access_token=zz failed';
    const out = redactText(msg);
    expect(out).not.toContain('S3cret');
    expect(out).not.toContain('zz');
    expect(out).toBe('schema registry at http://***@10.0.0.1:8081 is unavailable: GET http://***@10.0.0.1:8081/schemas/ids/7?access_token=*** failed');
  });

  it('compares secrets exactly, whatever their lengths', () => {
    expect(sameSecret('s3cret', 's3cret')).toBe(true);
    expect(sameSecret('s3cre', 's3cret')).toBe(false);
    expect(sameSecret('s3cret!', 's3cret')).toBe(false);
    expect(sameSecret(undefined, 's3cret')).toBe(false);
  });

  it('splits user-info off for basic auth, decoded', () => {
    expect(splitUserInfo('https://svc:p%40ss@registry.example.com:8081')).toEqual({ url: 'https://registry.example.com:8081', auth: { username: 'svc', password: 'p@ss' } });
    expect(splitUserInfo('http://127.0.0.1:8081')).toEqual({ url: 'http://127.0.0.1:8081' });
  });
});
