import { fileURLToPath } from 'node:url';

/** The one migration set, applied at start by both adapters. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('./migrations', import.meta.url));
