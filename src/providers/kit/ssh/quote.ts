// POSIX shell quoting for everything that reaches a remote shell. sshd always hands the command
// string to the user's login shell, so exec builds that string only from quoted argv elements:
// nothing from a spec, a label, a path or an env value can run as shell.

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/**
 * Quotes one argument for a POSIX shell: plain words stay as they are, anything else is wrapped in
 * single quotes, with each `'` written as `'\''`. NUL cannot pass through a shell and is refused.
 * @example quoteArg("it's; rm -rf /") // 'it'\''s; rm -rf /'
 */
export function quoteArg(arg: string): string {
  if (arg.includes('\0')) throw new TypeError('an argument for a remote shell cannot contain NUL');
  if (arg === '') return "''";
  if (SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quotes every element and joins them with spaces: a command line the shell splits back into argv. */
export function quoteArgv(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('empty argv');
  return argv.map(quoteArg).join(' ');
}
