import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Artifact } from '../../core/index.js';
import {
  ArtifactSpec,
  Id,
  InvalidInputError,
  NotFoundError,
  ArtifactListResponse,
  ArtifactResponse,
} from '../../core/index.js';
import type { Store } from '../../store/index.js';
import { requestTenant, requireRole } from '../auth.js';
import type { ServerContext } from '../server-context.js';
import { ERROR_RESPONSES, IdParams, TenantQuery } from './common.js';
import { readableJob } from './jobs.js';

const token = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** `type/subtype` with optional parameters: it goes back out as a Content-Type header. */
const MediaType = z
  .string()
  .max(200)
  .regex(
    new RegExp(`^${token}/${token}(\\s*;\\s*${token}=(${token}|"[^"\\\\\\r\\n]*"))*$`),
    'expected a media type such as text/plain or image/png',
  );

/** An artifact's bytes, in a request or response body (any content type). */
const RawBytes = z
  .custom<Buffer>((v) => Buffer.isBuffer(v), 'expected raw bytes')
  .meta({ type: 'string', format: 'binary' });

export const PutArtifactQuery = z
  .object({
    tenant: z.string().optional(),
    /** The writer's lease epoch: a stale one stores no artifact. */
    epoch: z.coerce.number().int().positive(),
    kind: ArtifactSpec.shape.kind,
    name: ArtifactSpec.shape.name,
    runId: Id.optional(),
    /** Served back as the content type; default application/octet-stream. */
    mediaType: MediaType.optional(),
  })
  .strict();

const errors = ERROR_RESPONSES;
const readers = ['admin', 'operator', 'factory', 'agent'] as const;

/** Artifacts: blobs a run leaves behind (transcripts, diffs, logs), uploaded as raw bytes. */
export async function artifactRoutes(app: FastifyInstance, ctx: ServerContext): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { store } = ctx;

  r.get(
    '/v1/jobs/:id/artifacts',
    {
      preHandler: requireRole(...readers),
      schema: {
        summary: "A job's artifacts, oldest first",
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: ArtifactListResponse, ...errors },
      },
    },
    async (request) => {
      const job = await readableJob(store, request, request.params.id);
      return { items: await store.listArtifacts(job.tenant, job.id) };
    },
  );

  // Its own scope: the upload takes any content type as raw bytes, and JSON routes stay JSON.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) =>
      done(null, body),
    );
    scope.withTypeProvider<ZodTypeProvider>().put(
      '/v1/jobs/:id/artifacts',
      {
        preHandler: requireRole('factory', 'admin'),
        schema: {
          summary: 'Upload an artifact: the request body is its bytes; fenced by the lease epoch',
          consumes: ['application/octet-stream'],
          params: IdParams,
          querystring: PutArtifactQuery,
          body: RawBytes.nullish(),
          response: { 201: ArtifactResponse, ...errors },
        },
      },
      async (request, reply) => {
        // Fenced writes name the job only: check the caller's tenant owns it first.
        const job = await readableJob(store, request, request.params.id);
        const q = request.query;
        if (q.runId !== undefined) {
          const run = await store.getRun(job.tenant, q.runId);
          if (run === null || run.jobId !== job.id)
            throw new InvalidInputError('request querystring', [
              { path: 'querystring.runId', message: `not a run of job ${job.id}` },
            ]);
        }
        const bytes = request.body ?? Buffer.alloc(0);
        const artifact = await store.putArtifact(
          { jobId: job.id, epoch: q.epoch },
          {
            kind: q.kind,
            name: q.name,
            runId: q.runId ?? null,
            mediaType: q.mediaType ?? 'application/octet-stream',
          },
          bytes,
        );
        return reply.status(201).send({ artifact });
      },
    );
  });

  r.get(
    '/v1/artifacts/:id',
    {
      preHandler: requireRole(...readers),
      schema: {
        summary: "An artifact's metadata",
        params: IdParams,
        querystring: TenantQuery,
        response: { 200: ArtifactResponse, ...errors },
      },
    },
    async (request) => ({ artifact: await readableArtifact(store, request, request.params.id) }),
  );

  r.get(
    '/v1/artifacts/:id/content',
    {
      preHandler: requireRole(...readers),
      schema: {
        summary: "An artifact's bytes, served with its media type",
        params: IdParams,
        querystring: TenantQuery,
        produces: ['application/octet-stream', 'application/json'],
        response: { 200: RawBytes, ...errors },
      },
    },
    async (request, reply) => {
      const artifact = await readableArtifact(store, request, request.params.id);
      const bytes = await store.readArtifact(artifact.tenant, artifact.id);
      return reply
        .type(artifact.mediaType)
        .header('x-content-type-options', 'nosniff')
        .header('content-disposition', attachment(artifact.name))
        .send(bytes);
    },
  );
}

/** The artifact the caller may read: an agent token sees its own job's and children's only. */
async function readableArtifact(
  store: Store,
  request: FastifyRequest,
  id: string,
): Promise<Artifact> {
  const artifact = await store.getArtifact(requestTenant(request), id);
  if (artifact === null) throw new NotFoundError('artifact', id);
  if (request.principal!.jobId !== null) {
    try {
      await readableJob(store, request, artifact.jobId);
    } catch (err) {
      throw err instanceof NotFoundError ? new NotFoundError('artifact', id) : err;
    }
  }
  return artifact;
}

/** Served as a download under its own name: stored bytes never render as the API's page. */
function attachment(name: string): string {
  const base = name.split('/').pop() || 'artifact';
  const ascii = base.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const utf8 = encodeURIComponent(base).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}
