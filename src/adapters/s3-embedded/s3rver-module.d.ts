// Minimal types for s3rver 3.7.1 (it ships none): only what the embedded server uses.
// Named *-module.d.ts because a .d.ts beside a same-named .ts is dropped from the program.
declare module 's3rver' {
  import type { EventEmitter } from 'node:events';
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface S3rverOptions {
    address?: string;
    port?: number;
    directory?: string;
    silent?: boolean;
    vhostBuckets?: boolean;
    resetOnClose?: boolean;
    allowMismatchedSignatures?: boolean;
  }

  /** The payload of the 'event' emitted for object PUT, POST, COPY and DELETE. */
  export interface S3rverEvent {
    Records: {
      eventName: string;
      s3: { bucket: { name: string }; object: { key: string; size?: number } };
    }[];
  }

  /** The file store: where a bucket's directory and an object's files are. */
  export interface S3rverStore {
    readonly rootDirectory: string;
    getBucketPath(bucket: string): string;
    getResourcePath(bucket: string, key?: string, resource?: string): string;
  }

  export default class S3rver extends EventEmitter {
    constructor(options?: S3rverOptions);
    readonly store: S3rverStore;
    /** Koa's flag: true stops it printing errors to stderr. */
    silent: boolean;
    readonly logger: { close(): void };
    /** The Koa request handler, for serving from our own http.Server. */
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}

declare module 's3rver/lib/models/account.js' {
  export interface AWSAccount {
    createKeyPair(accessKeyId: string, secretAccessKey: string): void;
    revokeAccessKey(accessKeyId: string): void;
  }
  /** The one account s3rver's controllers attribute every bucket and object to. */
  export const DUMMY_ACCOUNT: AWSAccount;
}

declare module 's3rver/lib/models/error.js' {
  /** An error s3rver answers as S3 does: its code sets the HTTP status (InvalidArgument → 400). */
  export default class S3Error extends Error {
    constructor(code: string, message: string, detail?: Record<string, string>);
    readonly code: string;
    readonly status: number;
  }
}
