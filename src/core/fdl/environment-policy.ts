// Which service variables may reach a job (DESIGN.md §3.2, issue #11 item 4). Refused: the
// names that make a program load or run code other than its own from the environment alone,
// before or beside what it was asked to run. The list is checked at service create/update
// (400) and again by the executor, which drops them (a service stored before this check).
//
// Why each family, and what is deliberately not on the list:
// - the dynamic loader and glibc: every LD_* (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH…) and
//   glibc's own "unsecure" set — the names ld.so strips for setuid programs because they load
//   code or redirect lookups (GCONV_PATH, GETCONF_DIR, GLIBC_TUNABLES, HOSTALIASES,
//   LOCALDOMAIN, LOCPATH, MALLOC_*, NIS_PATH, NLSPATH, RESOLV_HOST_CONF, RES_OPTIONS). These
//   act on any dynamically linked program: bwrap and the network helper run outside the
//   namespaces, which is how LD_PRELOAD dumped another job. Not refused from glibc's set:
//   TMPDIR and TZDIR, which only choose where files go or which data is read.
// - shells: BASH_ENV, ENV (startup files), BASH_FUNC_* (exported functions: shellshock's
//   channel), SHELLOPTS/BASHOPTS (xtrace…), PS4 (expanded on every traced command), IFS,
//   PROMPT_COMMAND: they run code before the script's first line.
// - interpreters' startup hooks: PERL5OPT, PERL5DB, PYTHONSTARTUP, PYTHONHOME, PYTHONINSPECT,
//   NODE_OPTIONS, RUBYOPT, JAVA_TOOL_OPTIONS, _JAVA_OPTIONS, JDK_JAVA_OPTIONS: code or flags
//   injected into every run of that interpreter.
// Kept: module search paths (PYTHONPATH, PERL5LIB, PERLLIB, RUBYLIB, NODE_PATH, CLASSPATH).
// They are how a service points its own interpreter at its own modules; nothing the manager
// starts is Python, Perl, Ruby, Node or Java, so they act only inside the sandbox, in programs
// the owner's script chose to run — code the owner could run from the script anyway.
import { fail } from '../errors.ts';

export const HIJACK_PREFIXES: readonly string[] = ['LD_', 'MALLOC_', 'BASH_FUNC_'];

export const HIJACK_NAMES: ReadonlySet<string> = new Set([
  // glibc (ld.so's unsecure environment list, minus TMPDIR and TZDIR)
  'GCONV_PATH',
  'GETCONF_DIR',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'LOCALDOMAIN',
  'LOCPATH',
  'NIS_PATH',
  'NLSPATH',
  'RESOLV_HOST_CONF',
  'RES_OPTIONS',
  // shells
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'IFS',
  'PROMPT_COMMAND',
  // interpreters' startup hooks
  'PERL5OPT',
  'PERL5DB',
  'PYTHONSTARTUP',
  'PYTHONHOME',
  'PYTHONINSPECT',
  'NODE_OPTIONS',
  'RUBYOPT',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
]);

/** Names are case-sensitive, as the loader and shells read them: `ld_preload` is inert. */
export const isHijackVariable = (name: string): boolean =>
  HIJACK_NAMES.has(name) || HIJACK_PREFIXES.some((p) => name.startsWith(p));

interface EnvironmentBlock {
  variables?: Record<string, string>;
  secrets?: Record<string, string>;
}

/** The refused names of a service's environment, as field paths ("environment.variables.LD_PRELOAD"). */
export const hijackFields = (environment: EnvironmentBlock | undefined): string[] => {
  const fields: string[] = [];
  for (const where of ['variables', 'secrets'] as const) {
    for (const name of Object.keys(environment?.[where] ?? {})) {
      if (isHijackVariable(name)) fields.push(`environment.${where}.${name}`);
    }
  }
  return fields;
};

/** Throws VALIDATION_FAILED naming every refused variable (never its value: it may be a secret). */
export const assertNoHijackVariables = (environment: EnvironmentBlock | undefined): void => {
  const fields = hijackFields(environment);
  if (fields.length === 0) return;
  fail(
    'VALIDATION_FAILED',
    `invalid service: ${fields.join(', ')}: not allowed, ${fields.length === 1 ? 'it makes' : 'they make'} the loader, libc, a shell or an interpreter run code from the environment (see docs/security.md, "Job sandbox")`,
    { fields },
  );
};
