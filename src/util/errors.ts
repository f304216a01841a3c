/**
 * An error caused by the user's input or environment (bad file, missing weights, wrong flag).
 * The CLI prints its message as one line and exits non-zero, without a stack trace.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}

const FS_REASONS: Record<string, string> = {
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a folder, not a file',
  ENOTDIR: 'part of the path is not a folder',
  ENOSPC: 'the disk is full',
  EMFILE: 'too many files are open',
  ELOOP: 'it is a loop of symbolic links',
  ENAMETOOLONG: 'the name is too long',
};

/** A file-system error in plain words ("it does not exist"), not Node's code ("ENOENT"). */
export function fsReason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && FS_REASONS[code]) return FS_REASONS[code];
  return e instanceof Error ? e.message.split('\n')[0]! : String(e);
}
