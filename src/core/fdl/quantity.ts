// Kubernetes-style quantities as OSCAR accepts them: cpu in cores ("0.5") or millicores
// ("500m"); memory with binary (Ki, Mi, Gi, Ti) or decimal (K, M, G, T) suffixes.

const CPU_RE = /^(\d+(?:\.\d+)?|\.\d+)(m?)$/;
const MEMORY_RE = /^(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|k|K|M|G|T|P)?$/;

const MEMORY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
  Pi: 1024 ** 5,
};

/** Millicores of a cpu quantity, or undefined when the text is not one. */
export const parseCpuMillis = (value: string | number): number | undefined => {
  const text = String(value).trim();
  const m = CPU_RE.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const millis = m[2] === 'm' ? n : n * 1000;
  if (!Number.isFinite(millis)) return undefined;
  return Math.round(millis);
};

/** Cores as the decimal string OSCAR stores ("0.5", "2"). */
export const formatCpu = (millis: number): string => {
  const cores = millis / 1000;
  return String(Number(cores.toFixed(3)));
};

/** Bytes of a memory quantity, or undefined when the text is not one. */
export const parseMemoryBytes = (value: string | number): number | undefined => {
  const text = String(value).trim();
  const m = MEMORY_RE.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * MEMORY_UNITS[m[2] ?? ''];
  if (!Number.isFinite(bytes)) return undefined;
  return Math.round(bytes);
};

/** A readable memory quantity ("512Mi", "4Gi"), exact when the value allows it. */
export const formatMemory = (bytes: number): string => {
  for (const unit of ['Ti', 'Gi', 'Mi', 'Ki'] as const) {
    const size = MEMORY_UNITS[unit];
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
};
