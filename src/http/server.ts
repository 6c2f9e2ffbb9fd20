// Builds the Fastify app: parsers, error mapping, OpenAPI at /docs, /metrics, the /ui dashboard, and the route groups.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { FlotillaError } from '../core/errors.ts';
import { addBodyParsers } from './body-parsers.ts';
import type { HttpContext } from './context.ts';
import { frameworkErrorHandler, installErrorHandling } from './error-handler.ts';
import { bucketRoutes } from './routes/buckets.ts';
import { dashboardRoutes } from './routes/dashboard.ts';
import { federationRoutes } from './routes/federation.ts';
import { jobRoutes } from './routes/jobs.ts';
import { logRoutes } from './routes/logs.ts';
import { managerLogRoutes } from './routes/manager-log.ts';
import { metricsRoutes } from './routes/metrics.ts';
import { quotaRoutes } from './routes/quotas.ts';
import { serviceDeploymentRoutes } from './routes/service-deployment.ts';
import { serviceRoutes } from './routes/services.ts';
import { systemRoutes } from './routes/system.ts';
import { usageMetricsRoutes } from './routes/usage-metrics.ts';
import { volumeRoutes } from './routes/volumes.ts';
import { flotillaValidatorCompiler } from './schemas.ts';
import { traceRequests } from './tracing-hook.ts';

/**
 * Failed authentications are throttled per source address: the rule is the context's
 * LoginThrottle; the address is the connection's (req.ip).
 */
const throttleFailedLogins = (app: FastifyInstance, ctx: HttpContext): void => {
  const throttle = ctx.loginThrottle;
  if (!throttle) return;
  app.addHook('onRequest', async (req, reply) => {
    if (!req.headers.authorization) return;
    const wait = throttle.retryAfter(req.ip, Date.now());
    if (wait === undefined) return;
    reply.header('retry-after', String(wait));
    throw new FlotillaError(
      'RATE_LIMITED',
      `too many failed authentications from this address; try again in ${wait} s`,
    );
  });
  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode === 401 && req.headers.authorization) throttle.fail(req.ip, Date.now());
    return payload;
  });
};

export const buildHttpServer = async (
  ctx: HttpContext,
  opts: { logger?: Logger | false; version: string },
): Promise<FastifyInstance> => {
  const app: FastifyInstance = Fastify({
    // pino's Logger and Fastify's base logger type differ only in generics.
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    bodyLimit: ctx.bodyLimitBytes,
    routerOptions: { ignoreTrailingSlash: true, ignoreDuplicateSlashes: true, maxParamLength: 500 },
    logController: new LogController({ disableRequestLogging: true }),
    forceCloseConnections: true,
    // Malformed URLs and over-long path parameters answer in the one JSON error shape.
    frameworkErrors: frameworkErrorHandler,
  });
  app.setValidatorCompiler(flotillaValidatorCompiler);
  // Responses are plain JSON; route response schemas exist for the OpenAPI document only.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  installErrorHandling(app);
  traceRequests(app, ctx.tracing, 'public');
  throttleFailedLogins(app, ctx);
  addBodyParsers(app);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'Flotilla API',
        description: 'OSCAR-compatible manager with federation',
        version: opts.version,
      },
      components: {
        securitySchemes: {
          basic: { type: 'http', scheme: 'basic' },
          bearer: { type: 'http', scheme: 'bearer', description: 'OIDC access token or a service token' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  // Its own scripts only (by hash), as for /ui; swagger-ui sets inline styles from script,
  // which are allowed (styles cannot run code).
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/style-src [^;]*/, "style-src 'self' 'unsafe-inline'"),
  });

  // First: its timing hook must see every route registered after it.
  await metricsRoutes(app, ctx);
  await systemRoutes(app, ctx);
  await dashboardRoutes(app, ctx);
  await serviceRoutes(app, ctx);
  await logRoutes(app, ctx);
  await managerLogRoutes(app, ctx);
  await bucketRoutes(app, ctx);
  // The rest of OSCAR v4.1's routes.
  await usageMetricsRoutes(app, ctx);
  await quotaRoutes(app, ctx);
  await volumeRoutes(app, ctx);
  await serviceDeploymentRoutes(app, ctx);
  await federationRoutes(app, ctx);
  // Raw bodies for invocations only: an encapsulated plugin keeps its own parsers.
  await app.register(async (scoped) => jobRoutes(scoped, ctx));
  for (const plugin of ctx.plugins ?? []) await app.register(async (scoped) => plugin(scoped, ctx));
  return app;
};
