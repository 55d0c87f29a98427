import type { FastifyInstance } from 'fastify';
import { expect, it } from 'vitest';
import { describeStores } from '../helpers/stores.js';
import { openServer } from './helpers.js';

interface Operation {
  summary?: string;
  parameters?: { in: string; name: string; required?: boolean }[];
  requestBody?: { content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, { description: string; content?: Record<string, { schema: unknown }> }>;
}
interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  required?: string[];
}
interface Document {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/**
 * Every `METHOD /path` the app serves, from `printRoutes` (a tree of path segments, each line
 * `├── /segment (GET, HEAD)`), without the HEAD routes Fastify adds for each GET.
 */
function servedRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([^)]*)\))?$/.exec(line);
    if (m === null) continue;
    const depth = [...m[1]!].length / 4;
    stack.length = depth;
    stack.push(m[2]!);
    const path = stack.join('').replace(/:(\w+)/g, '{$1}');
    for (const method of (m[3] ?? '').split(', ').filter((x) => x !== '' && x !== 'HEAD'))
      routes.push(`${method} ${path}`);
  }
  return routes.sort();
}

describeStores('OpenAPI document', (kind) => {
  it('is served without a token and has the OpenAPI 3 shape', async () => {
    const { app } = await openServer(kind);
    const res = await app.inject({ url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const doc = res.json<Document>();
    expect(doc.openapi).toMatch(/^3\.\d+\.\d+$/);
    expect(doc.info).toMatchObject({ title: 'Fleet', version: 'test' });
    expect(typeof doc.paths).toBe('object');
    for (const [path, item] of Object.entries(doc.paths)) {
      expect(path).toMatch(/^\//);
      expect(path).not.toContain(':');
      for (const [method, op] of Object.entries(item)) {
        expect(METHODS).toContain(method);
        expect(Object.keys(op.responses).length).toBeGreaterThan(0);
      }
    }
  });

  it('lists every route the app serves, with request and response schemas', async () => {
    const { app } = await openServer(kind);
    const doc = (await app.inject({ url: '/openapi.json' })).json<Document>();
    const documented = Object.entries(doc.paths)
      .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    // WebSocket upgrade routes cannot be described in OpenAPI (@fastify/websocket hides them);
    // the factory protocol is specified by its zod union in src/core/protocol.
    const upgrades = ['GET /v1/factory'];
    const all = servedRoutes(app);
    expect(all).toEqual(expect.arrayContaining(upgrades));
    const served = all.filter((r) => !upgrades.includes(r));
    expect(served.length).toBeGreaterThanOrEqual(10);
    expect(served).toContain('GET /openapi.json');
    expect(served).toContain('GET /metrics');
    expect(documented).toEqual(served);

    for (const [path, item] of Object.entries(doc.paths)) {
      const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]);
      for (const [method, op] of Object.entries(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        // Response schemas: at least one status documents its content.
        const withContent = Object.values(op.responses).filter(
          (r) => r.content !== undefined && Object.keys(r.content).length > 0,
        );
        expect(withContent.length, `${where} documents a response body`).toBeGreaterThan(0);
        // Request schemas: every path parameter is described.
        const inPath = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
        expect(inPath.sort(), `${where} path parameters`).toEqual(pathParams.sort());
      }
    }
  });

  it('describes POST /v1/jobs: body.jobs items with bodyMd and priority', async () => {
    const { app } = await openServer(kind);
    const doc = (await app.inject({ url: '/openapi.json' })).json<Document>();
    const post = doc.paths['/v1/jobs']!.post!;
    const body = post.requestBody!.content['application/json']!.schema;
    expect(body.type).toBe('object');
    expect(body.required).toContain('jobs');
    const item = body.properties!.jobs!.items!;
    expect(item.properties).toHaveProperty('bodyMd');
    expect(item.properties!.bodyMd!.type).toBe('string');
    expect(item.properties!.priority!.type).toBe('integer');
    expect(item.required).toContain('bodyMd');
    expect(Object.keys(post.responses)).toEqual(expect.arrayContaining(['200', '201', '400']));
    expect(post.responses['201']!.content!['application/json']!.schema).toMatchObject({
      properties: { jobs: { type: 'array' } },
    });

    const list = doc.paths['/v1/jobs']!.get!;
    expect(list.parameters?.filter((p) => p.in === 'query').map((p) => p.name)).toEqual(
      expect.arrayContaining(['stage', 'limit', 'after']),
    );

    const metrics = doc.paths['/metrics']!.get!;
    expect(Object.keys(metrics.responses['200']!.content!)).toEqual(['text/plain']);
  });
});
