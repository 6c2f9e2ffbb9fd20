#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so a fresh `npm ci` needs no build step.
import { register } from 'tsx/esm/api';

// The AWS SDK warns on every start that future releases need Node 22; the pinned one works.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
await import('../src/cli/main.ts');
