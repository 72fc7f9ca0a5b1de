// `spotfleet completion bash|zsh|fish`: prints a shell completion script for every command, its
// subcommands and its options, generated from the same command definitions `--help` reads, so the
// script never lists a flag that does not exist. Paths complete as files.
import { Command } from 'commander';
import { UsageError } from '../core/errors.js';
import type { CliApp } from './app.js';
import { COMMANDS, registerCommands } from './commands.js';

/** One command as completion sees it: its name, what it does, its flags and its subcommands. */
export interface CompletionCommand {
  name: string;
  description: string;
  options: { long: string; short?: string; description: string; takesValue: boolean }[];
  subcommands: CompletionCommand[];
}

function optionsOf(cmd: Command): CompletionCommand['options'] {
  const opts = cmd.options.filter((o) => o.long !== undefined && !o.hidden);
  const out = opts.map((o) => ({ long: o.long as string, ...(o.short ? { short: o.short } : {}), description: o.description, takesValue: o.required || o.optional }));
  out.push({ long: '--help', short: '-h', description: 'display help for command', takesValue: false });
  return out;
}

function describe(cmd: Command): CompletionCommand {
  return {
    name: cmd.name(),
    description: cmd.description().split('\n')[0] ?? '',
    options: optionsOf(cmd),
    subcommands: cmd.commands.filter((c) => !(c as Command & { _hidden?: boolean })._hidden).map(describe),
  };
}

/** Every command of the CLI, for completion (all command modules loaded into a fresh program). */
export async function completionModel(app: CliApp): Promise<CompletionCommand> {
  const program = new Command('spotfleet').option('--debug', 'show debug logs and stack traces').option('--no-color', 'disable colour').option('--input <bool>', 'ask for input when needed').option('-v, --version', 'print the spotfleet version');
  await registerCommands(program, app, COMMANDS);
  return describe(program);
}

const words = (list: readonly string[]): string => list.join(' ');

/** bash: `complete -F`, with subcommands (state list|show|...) and per-command flags. */
export function bashScript(root: CompletionCommand): string {
  const cases: string[] = [];
  const subCases: string[] = [];
  const flags = (c: CompletionCommand): string => words(c.options.flatMap((o) => [o.long, ...(o.short ? [o.short] : [])]));
  for (const c of root.subcommands) {
    if (c.subcommands.length > 0) {
      cases.push(`    ${c.name}) subs="${words(c.subcommands.map((s) => s.name))}"; opts="${flags(c)}" ;;`);
      for (const s of c.subcommands) subCases.push(`    "${c.name} ${s.name}") opts="${flags(s)}" ;;`);
    } else {
      cases.push(`    ${c.name}) opts="${flags(c)}" ;;`);
    }
  }
  return `# bash completion for spotfleet. Load it with:
#   source <(spotfleet completion bash)
# or install it: spotfleet completion bash > /etc/bash_completion.d/spotfleet
_spotfleet() {
  local cur cmd="" sub="" i w subs="" opts=""
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    if [[ -z "$cmd" ]]; then cmd="$w"; elif [[ -z "$sub" ]]; then sub="$w"; break; fi
  done
  if [[ -z "$cmd" ]]; then
    COMPREPLY=($(compgen -W "${words(root.subcommands.map((c) => c.name))} ${flags(root)}" -- "$cur"))
    return 0
  fi
  case "$cmd" in
${cases.join('\n')}
  esac
  if [[ -n "$subs" && -n "$sub" ]]; then
    case "$cmd $sub" in
${subCases.join('\n')}
    esac
    subs=""
  fi
  if [[ -n "$subs" && -z "$sub" && "$cur" != -* ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -o bashdefault -F _spotfleet spotfleet
`;
}

/** zsh: `_arguments` per command with described flags, files for arguments. */
export function zshScript(root: CompletionCommand): string {
  const q = (s: string): string => s.replace(/'/g, "'\\''").replace(/[[\]:]/g, (m) => `\\${m}`);
  const args = (c: CompletionCommand): string =>
    c.options.map((o) => `'${o.short ? `(${o.short} ${o.long})'{${o.short},${o.long}}'` : o.long}[${q(o.description)}]${o.takesValue ? ':value:_files' : ''}'`).join(' \\\n        ');
  const fns: string[] = [];
  const cases: string[] = [];
  for (const c of root.subcommands) {
    const fn = `_spotfleet_${c.name.replace(/-/g, '_')}`;
    if (c.subcommands.length > 0) {
      const subCases = c.subcommands.map((s) => `      ${s.name}) _arguments -s \\\n        ${args(s)} \\\n        '*:path:_files' ;;`).join('\n');
      fns.push(`${fn}() {
  local -a subs
  subs=(${c.subcommands.map((s) => `'${s.name}:${q(s.description)}'`).join(' ')})
  if (( CURRENT == 2 )); then
    _describe 'subcommand' subs
    return
  fi
  case $words[2] in
${subCases}
  esac
}`);
    } else {
      fns.push(`${fn}() {
  _arguments -s \\
        ${args(c)} \\
        '*:path:_files'
}`);
    }
    cases.push(`    ${c.name}) ${fn} ;;`);
  }
  return `#compdef spotfleet
# zsh completion for spotfleet. Load it with:
#   source <(spotfleet completion zsh)
# or save it as _spotfleet in a folder on your $fpath.
${fns.join('\n')}
_spotfleet() {
  local -a cmds
  cmds=(${root.subcommands.map((c) => `'${c.name}:${q(c.description)}'`).join(' ')})
  if (( CURRENT == 2 )); then
    _describe 'command' cmds
    return
  fi
  shift words
  (( CURRENT-- ))
  case $words[1] in
${cases.join('\n')}
  esac
}
if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
  _spotfleet "$@"
else
  compdef _spotfleet spotfleet
fi
`;
}

/** fish: `complete -c spotfleet` lines for commands, subcommands and flags. */
export function fishScript(root: CompletionCommand): string {
  const q = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const out: string[] = [
    '# fish completion for spotfleet. Load it with:',
    '#   spotfleet completion fish | source',
    '# or install it: spotfleet completion fish > ~/.config/fish/completions/spotfleet.fish',
    'complete -c spotfleet -f',
  ];
  const names = root.subcommands.map((c) => c.name).join(' ');
  const opt = (cond: string, o: CompletionCommand['options'][number]): string =>
    `complete -c spotfleet -n ${q(cond)} -l ${o.long.replace(/^--/, '')}${o.short ? ` -s ${o.short.replace(/^-/, '')}` : ''}${o.takesValue ? ' -r -F' : ''} -d ${q(o.description)}`;
  for (const o of root.options) out.push(opt('__fish_use_subcommand', o));
  for (const c of root.subcommands) {
    out.push(`complete -c spotfleet -n '__fish_use_subcommand' -a ${c.name} -d ${q(c.description)}`);
    if (c.subcommands.length > 0) {
      const subNames = c.subcommands.map((s) => s.name).join(' ');
      for (const s of c.subcommands) {
        out.push(`complete -c spotfleet -n ${q(`__fish_seen_subcommand_from ${c.name}; and not __fish_seen_subcommand_from ${subNames}`)} -a ${s.name} -d ${q(s.description)}`);
        for (const o of s.options) out.push(opt(`__fish_seen_subcommand_from ${c.name}; and __fish_seen_subcommand_from ${s.name}`, o));
        out.push(`complete -c spotfleet -n ${q(`__fish_seen_subcommand_from ${c.name}; and __fish_seen_subcommand_from ${s.name}`)} -F`);
      }
    } else {
      for (const o of c.options) out.push(opt(`__fish_seen_subcommand_from ${c.name}`, o));
      out.push(`complete -c spotfleet -n ${q(`__fish_seen_subcommand_from ${c.name}; and not __fish_seen_subcommand_from ${names.replace(new RegExp(`(^| )${c.name}( |$)`), ' ').trim()}`)} -F`);
    }
  }
  return `${out.join('\n')}\n`;
}

export function register(program: Command, app: CliApp): void {
  program
    .command('completion')
    .description('print a shell completion script: bash, zsh or fish')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => {
      const scripts: Record<string, (c: CompletionCommand) => string> = { bash: bashScript, zsh: zshScript, fish: fishScript };
      const make = scripts[shell];
      if (!make) throw new UsageError(`completion: unknown shell "${shell}"`, ['Expected bash, zsh or fish.']);
      app.io.stdout.write(make(await completionModel(app)));
    });
}
