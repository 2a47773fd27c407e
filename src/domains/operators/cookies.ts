/**
 * The session cookie. Hand-written rather than a cookie library: the Neuron reads and writes one
 * cookie of its own, whose value it generates from the base64url alphabet, so no quoting,
 * decoding or attribute parsing is needed (RFC 6265 section 4.2.1: `name=value` pairs separated
 * by `; `).
 */
import { SESSION_COOKIE } from './schemas.ts';

/** The session token from a Cookie header, or null. A malformed value is returned as is and fails the lookup. */
export function sessionTokenFrom(cookieHeader: string | undefined): string | null {
  if (cookieHeader === undefined) return null;
  for (const pair of cookieHeader.split(';')) {
    const at = pair.indexOf('=');
    if (at < 0) continue;
    if (pair.slice(0, at).trim() === SESSION_COOKIE) return pair.slice(at + 1).trim();
  }
  return null;
}

/**
 * HttpOnly: page scripts never see the token. SameSite=Strict: the browser sends it only on
 * requests the console itself makes. Secure when the request came over TLS (directly, or through
 * a trusted proxy that says so), since a browser would drop a Secure cookie set over plain http.
 */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${token}; Max-Age=${maxAgeSeconds}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** Tells the browser to forget the cookie (sign-out, or a session found ended). */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
