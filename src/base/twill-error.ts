// The one base class of twill's errors (DESIGN.md convention 4), after undici's
// lib/core/errors.js: every error a module throws on purpose is a TwillError subclass with a
// stable string `code` and, when it wraps something, the original as `cause`. Code branches on
// `code` (or a typed field such as NetlinkError's `errno`), never on the message, which is for
// people and may change.
//
// Subclasses set `name` themselves: the bundles are minified, so a class name read at run time
// (new.target.name) would be mangled in logs.
// Programming errors in arguments (an encoder handed "10.0.0.256") stay TypeError/RangeError,
// as in Node's own APIs: they are bugs to fix, not conditions to handle.

export interface ErrorOptions {
  cause?: unknown;
}

export abstract class TwillError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: ErrorOptions) {
    // No own `cause` property at all when there is none (what `new Error(m)` gives).
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** The `code` of anything thrown, if it carries a string one (TwillError, Node's system errors). */
export function errorCode(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}
