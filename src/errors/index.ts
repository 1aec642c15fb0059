/**
 * One error type for all of nspod. The code says what kind of failure it is; the CLI maps codes
 * to exit statuses and the CRI server to gRPC statuses, each in one place.
 * Messages are lowercase, without a trailing period, and name the object they speak of.
 */
export type ErrorCode =
  'NOT_FOUND' | 'ALREADY_EXISTS' | 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION' | 'UNAVAILABLE' | 'INTERNAL';

export class NspodError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NspodError';
    this.code = code;
  }
}

export const notFound = (msg: string, cause?: unknown): NspodError => new NspodError('NOT_FOUND', msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown): NspodError =>
  new NspodError('ALREADY_EXISTS', msg, { cause });
export const invalidArgument = (msg: string, cause?: unknown): NspodError =>
  new NspodError('INVALID_ARGUMENT', msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown): NspodError =>
  new NspodError('FAILED_PRECONDITION', msg, { cause });
export const unavailable = (msg: string, cause?: unknown): NspodError => new NspodError('UNAVAILABLE', msg, { cause });
export const internal = (msg: string, cause?: unknown): NspodError => new NspodError('INTERNAL', msg, { cause });

export function isNspodError(e: unknown, code?: ErrorCode): e is NspodError {
  return e instanceof NspodError && (code === undefined || e.code === code);
}

/** The message of any thrown value, for wrapping into a one-line error. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** True when a Node fs error has the given errno code (ENOENT, EEXIST, …). */
export function hasErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}

/** A unix socket path's limit (sun_path holds 108 bytes with the NUL); a longer one is cut short. */
export const MAX_SOCKET_PATH = 107;

/** Refuses a unix socket path the kernel would cut short (libuv binds the cut path silently). */
export function checkSocketPath(p: string, what: string): void {
  const n = Buffer.byteLength(p);
  if (n > MAX_SOCKET_PATH)
    throw invalidArgument(`${what}: unix socket path is ${n} bytes, at most ${MAX_SOCKET_PATH}: ${p}`);
}
