// The environment a job script sees: faas-supervisor's variables plus the service's own.
// Built from scratch: nothing of the manager's process.env (admin password, DATABASE_URL…)
// may reach a script. The hijack list (LD_PRELOAD, BASH_ENV…) is refused at service create;
// it is dropped here too, for services stored before that check.
import { isHijackVariable } from '../../core/fdl/environment-policy.ts';

export interface JobPaths {
  dir: string;
  inputDir: string;
  outputDir: string;
  /** Absolute path of the input file, when the job has one. */
  inputFile?: string;
}

export interface JobEnvRequest {
  jobId: string;
  serviceName: string;
  event: string;
  env: Record<string, string>;
  extraEnv?: Record<string, string>;
}

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** execve rejects any single "NAME=value" string over 128 KiB (MAX_ARG_STRLEN) with E2BIG. */
export const MAX_ENV_ENTRY_BYTES = 128 * 1024 - 1;

export interface BuiltEnv {
  env: Record<string, string>;
  /** Names left out because they cannot be passed to a process (bad name, NUL, too large). */
  dropped: string[];
  /** Service variables left out because they are on the hijack list. */
  refused: string[];
}

export function buildJobEnv(req: JobEnvRequest, paths: JobPaths): BuiltEnv {
  const supervisor: Record<string, string> = {
    EVENT: req.event,
    JOB_UUID: req.jobId,
    TMP_INPUT_DIR: paths.inputDir,
    TMP_OUTPUT_DIR: paths.outputDir,
    OSCAR_SERVICE_NAME: req.serviceName,
  };
  if (paths.inputFile) supervisor.INPUT_FILE_PATH = paths.inputFile;
  const refused = Object.keys(req.env).filter(isHijackVariable);
  const service = Object.fromEntries(Object.entries(req.env).filter(([name]) => !isHijackVariable(name)));
  // Later layers win: service variables may change PATH, but never the supervisor's contract.
  const merged = {
    PATH: BASE_PATH,
    HOME: paths.dir,
    LANG: 'C.UTF-8',
    ...service,
    ...req.extraEnv,
    ...supervisor,
  };
  return { ...keepPassable(merged), refused };
}

function keepPassable(vars: Record<string, string>): Omit<BuiltEnv, 'refused'> {
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(vars)) {
    if (isPassable(name, value)) env[name] = value;
    else dropped.push(name);
  }
  return { env, dropped };
}

function isPassable(name: string, value: unknown): value is string {
  if (typeof value !== 'string') return false;
  if (name === '' || name.includes('=') || name.includes('\0') || value.includes('\0')) return false;
  return Buffer.byteLength(name) + 1 + Buffer.byteLength(value) <= MAX_ENV_ENTRY_BYTES;
}
