// Creates a PGlite database in an empty directory (argv[2]; initdb arguments after it) and
// exits. initdb runs a second PostgreSQL in WASM beside the first; their memories are
// garbage afterwards but stay resident until a major GC, ~450 MB in a long-lived manager. Run here, the process exit
// frees them. Plain JavaScript, so it starts the same from src/ and from dist/.
import { PGlite } from '@electric-sql/pglite';

// Started with an IPC channel (fork): when the manager dies, the channel closes and this
// process goes too, rather than writing on into a directory nobody waits for.
process.on('disconnect', () => process.exit(1));

const db = new PGlite(process.argv[2], { initDbStartParams: process.argv.slice(3) });
await db.waitReady;
await db.close();
// The open channel would keep this process alive.
process.exit(0);
