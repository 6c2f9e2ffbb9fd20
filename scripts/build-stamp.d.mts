export declare const INPUT_DIRS: string[];
export declare const INPUT_FILES: string[];
export declare const STAMP_FILE: string;
export declare const inputsHash: (root: string) => string;
export declare const distState: (root: string, distDir?: string) => 'fresh' | 'stale' | 'missing';
