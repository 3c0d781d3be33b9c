#!/usr/bin/env node
// Validate every HTTP response the integration tests logged (AC_HTTP_LOG, one JSON line per
// response: {method, path, query, status, content_type, headers, body}; tests/support/httpc.c)
// against docs/openapi.yaml.
//
//   node validate-responses.mjs [--spec FILE] [--routes FILE] [--npm-dir DIR] LOG...
//
// Checks, each failure printed with the request that showed it:
//   - the document's schemas are valid JSON Schema 2020-12 and compile;
//   - every route of the server's route table (server/routes.c) is an operation of the document
//     and every operation is a route (so a new endpoint cannot go undocumented);
//   - each logged response: the operation (method + path template), the response (exact status,
//     else "NXX", else "default"), the media type (exact, else without parameters), the body
//     against the schema, the declared response headers (required ones present, values valid),
//     and for problem+json that `status` is the HTTP status and `type` ends in `code`;
//   - the router's own answers (the document's `x-agentclear-router`): `any-request` ones (414)
//     apply to every request whose operation does not document the status; a request that no
//     operation describes may only have those or the `no-operation` ones (404, 405);
//   - the logs hold at least one response.
// Exit 0 when all hold, 1 otherwise (2 on a usage or set-up error). npm packages (ajv, yaml) are
// loaded from --npm-dir or $AC_NPM_DIR (a scratch directory filled by ops/npm-clients.sh).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..');

function usage(msg) {
  if (msg) console.error(`validate-responses: ${msg}`);
  console.error('usage: validate-responses.mjs [--spec FILE] [--routes FILE] [--npm-dir DIR] LOG...');
  process.exit(2);
}

const opts = { spec: path.join(root, 'docs', 'openapi.yaml'),
               routes: path.join(root, 'server', 'routes.c'),
               npmDir: process.env.AC_NPM_DIR || '', logs: [] };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--spec' || a === '--routes' || a === '--npm-dir') {
    if (i + 1 >= process.argv.length) usage(`${a} needs a value`);
    opts[a === '--spec' ? 'spec' : a === '--routes' ? 'routes' : 'npmDir'] = process.argv[++i];
  } else if (a.startsWith('--')) {
    usage(`unknown option ${a}`);
  } else {
    opts.logs.push(a);
  }
}
if (opts.logs.length === 0) usage('no log file given');

// npm packages from the scratch directory (never vendored), else the usual resolution.
const req = createRequire(opts.npmDir ? path.join(path.resolve(opts.npmDir), 'index.js')
                                      : import.meta.url);
let Ajv2020, YAML;
try {
  const m = req('ajv/dist/2020');
  Ajv2020 = m.default || m;
  YAML = req('yaml');
} catch (e) {
  console.error(`validate-responses: cannot load ajv and yaml (${e.message}); ` +
                'install them with ops/npm-clients.sh and set AC_NPM_DIR');
  process.exit(2);
}

// ---- the document ----------------------------------------------------------------------------

const DOC_ID = 'urn:agentclear:openapi';
const doc = YAML.parse(fs.readFileSync(opts.spec, 'utf8'), { uniqueKeys: true });
const failures = [];          // {kind, key, text}
function fail(kind, key, text) { failures.push({ kind, key, text }); }

if (doc?.openapi !== '3.1.0') fail('document', 'version', `openapi is ${doc?.openapi}, expected 3.1.0`);

const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
// The formats the document uses; others would be annotations only (strict mode is off).
ajv.addFormat('date-time', {
  type: 'string',
  validate: (s) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.test(s) &&
                   !Number.isNaN(Date.parse(s)),
});
ajv.addSchema({ ...doc, $id: DOC_ID });

const esc = (seg) => encodeURIComponent(String(seg).replace(/~/g, '~0').replace(/\//g, '~1'));
const ptr = (...segs) => `${DOC_ID}#/${segs.map(esc).join('/')}`;
const compiled = new Map();
function validatorFor(ref) {
  if (!compiled.has(ref)) compiled.set(ref, ajv.compile({ $ref: ref }));
  return compiled.get(ref);
}
// Follow an OpenAPI (non-schema) $ref such as '#/components/responses/X' within the document.
function deref(obj) {
  const seen = new Set();
  let where = null;
  while (obj && typeof obj.$ref === 'string') {
    if (!obj.$ref.startsWith('#/') || seen.has(obj.$ref)) throw new Error(`unsupported $ref ${obj.$ref}`);
    seen.add(obj.$ref);
    where = obj.$ref.slice(2).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
    obj = where.reduce((o, k) => (o == null ? undefined : o[k]), doc);
    if (obj === undefined) throw new Error(`dangling $ref ${[...seen].pop()}`);
  }
  return { obj, where };
}

// Every schema in the document: valid against the 2020-12 meta-schema, and compiles.
function checkSchema(schema, segs) {
  const ref = ptr(...segs);
  if (!ajv.validateSchema(schema)) {
    fail('schema', ref, `${segs.join('/')}: ${ajv.errorsText(ajv.errors)}`);
    return;
  }
  try { validatorFor(ref); } catch (e) { fail('schema', ref, `${segs.join('/')}: ${e.message}`); }
}
for (const [name, s] of Object.entries(doc?.components?.schemas || {})) checkSchema(s, ['components', 'schemas', name]);
for (const [name, h] of Object.entries(doc?.components?.headers || {}))
  if (h.schema) checkSchema(h.schema, ['components', 'headers', name, 'schema']);
for (const [name, p] of Object.entries(doc?.components?.parameters || {}))
  if (p.schema) checkSchema(p.schema, ['components', 'parameters', name, 'schema']);
const contentSchemas = (content, segs) => {
  for (const [mt, m] of Object.entries(content || {}))
    if (m.schema) checkSchema(m.schema, [...segs, 'content', mt, 'schema']);
};
for (const [name, r] of Object.entries(doc?.components?.responses || {}))
  contentSchemas(r.content, ['components', 'responses', name]);
const router = doc?.['x-agentclear-router'] || {};
for (const part of ['any-request', 'no-operation'])
  for (const [st, r] of Object.entries(router[part] || {}))
    if (!r.$ref) contentSchemas(r.content, ['x-agentclear-router', part, st]);

// ---- operations ----------------------------------------------------------------------------------

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const ops = [];   // {method, template, re, nparams, op, segs, seen: Map(status -> n)}
for (const [template, item] of Object.entries(doc?.paths || {})) {
  const parts = template.split('/').map((p) => {
    if (/^\{[^}]+\}$/.test(p)) return '([^/]+)';
    if (/[{}]/.test(p)) fail('document', template, `path segment '${p}' mixes text and a parameter`);
    return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  const re = new RegExp(`^${parts.join('/')}$`);
  const nparams = (template.match(/\{/g) || []).length;
  for (const m of METHODS) {
    if (!item[m]) continue;
    ops.push({ method: m.toUpperCase(), template, re, nparams, op: item[m], segs: ['paths', template, m], seen: new Map() });
    for (const [st, r] of Object.entries(item[m].responses || {}))
      if (!r.$ref) contentSchemas(r.content, ['paths', template, m, 'responses', st]);
  }
}
ops.sort((a, b) => a.nparams - b.nparams);   // concrete paths before templated ones (OAS 3.1 4.8.8)

function findOperation(method, p) {
  let pathSeen = false;
  for (const o of ops) {
    if (!o.re.test(p)) continue;
    pathSeen = true;
    if (o.method === method) return { o, pathSeen };
  }
  return { o: null, pathSeen };
}

// ---- the route table agrees with the document ---------------------------------------------------------

if (opts.routes) {
  const text = fs.readFileSync(opts.routes, 'utf8');
  const routes = [...text.matchAll(/^\s*\{\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,/gm)].map((m) => `${m[1]} ${m[2]}`);
  if (routes.length === 0) fail('routes', opts.routes, `no routes found in ${opts.routes}`);
  const documented = new Set(ops.map((o) => `${o.method} ${o.template}`));
  for (const r of routes)
    if (!documented.has(r)) fail('routes', r, `route ${r} (server/routes.c) is not in the document`);
  const routed = new Set(routes);
  for (const d of documented)
    if (!routed.has(d)) fail('routes', d, `operation ${d} is in the document but not in server/routes.c`);
}

// ---- responses ------------------------------------------------------------------------------------

const essence = (ct) => String(ct || '').split(';')[0].trim().toLowerCase();
const isJson = (mt) => mt === 'application/json' || /^application\/[^;]+\+json$/.test(mt);

function pickResponse(responses, status) {
  const s = String(status);
  for (const k of [s, `${s[0]}XX`, `${s[0]}xx`, 'default'])
    if (responses && responses[k]) return { key: k, ...deref(responses[k]) };
  return null;
}

// Validate one logged response against a response object; returns a list of problems.
function checkResponse(line, resp, respSegs) {
  const out = [];
  const headers = line.headers || {};
  for (const [name, hraw] of Object.entries(resp.headers || {})) {
    if (name.toLowerCase() === 'content-type') continue;
    const { obj: h, where } = deref(hraw);
    const v = headers[name.toLowerCase()];
    if (v === undefined) {
      if (h.required) out.push(`header ${name} is required but absent`);
      continue;
    }
    if (h.schema) {
      const ref = where ? ptr(...where, 'schema') : ptr(...respSegs, 'headers', name, 'schema');
      const vf = validatorFor(ref);
      if (!vf(v)) out.push(`header ${name}: ${JSON.stringify(v)} ${ajv.errorsText(vf.errors)}`);
    }
  }
  const content = resp.content;
  if (!content || Object.keys(content).length === 0) {
    if (line.body) out.push(`a body was sent (${line.content_type}) where the document describes none`);
    return out;
  }
  const ct = line.content_type || '';
  let mt = Object.keys(content).find((k) => k.toLowerCase() === ct.toLowerCase());
  if (mt === undefined) mt = Object.keys(content).find((k) => essence(k) === essence(ct));
  if (mt === undefined) {
    out.push(`content type '${ct}' is not one of ${Object.keys(content).join(', ')}`);
    return out;
  }
  const media = content[mt];
  if (!media.schema) return out;
  if (line.body === null || line.body === undefined) {
    out.push('the body is not UTF-8 text');
    return out;
  }
  let value = line.body;
  if (isJson(essence(mt))) {
    try { value = JSON.parse(line.body); } catch (e) { out.push(`body is not JSON: ${e.message}`); return out; }
  }
  const vf = validatorFor(ptr(...respSegs, 'content', mt, 'schema'));
  if (!vf(value))
    for (const e of vf.errors) {
      let params = e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : '';
      if (params.length > 160) params = params.slice(0, 157) + '...';
      out.push(`body${e.instancePath || ''} ${e.message}${params}`);
    }
  if (essence(mt) === 'application/problem+json' && value && typeof value === 'object') {
    if (value.status !== line.status) out.push(`problem status ${value.status} differs from the HTTP status ${line.status}`);
    if (typeof value.code === 'string' && value.type !== `urn:agentclear:error:${value.code}`)
      out.push(`problem type '${value.type}' does not name code '${value.code}'`);
  }
  return out;
}

const unroutedSeen = new Map();
// A router answer for `status`: {obj, where} or null.
function routerResponse(part, status) {
  const r = router[part]?.[String(status)];
  if (!r) return null;
  const d = deref(r);
  return { obj: d.obj, where: d.where || ['x-agentclear-router', part, String(status)] };
}
let total = 0;
const checkedPerOp = new Map();

function handle(line, where) {
  const method = String(line.method || '').toUpperCase();
  const p = String(line.path || '');
  const reqText = `${method} ${p}${line.query != null ? '?' + line.query : ''} -> ${line.status}`;
  total++;
  const { o, pathSeen } = findOperation(method, p);
  let resp, respSegs, label;
  const r = o ? pickResponse(o.op.responses, line.status) : null;
  if (r) {
    label = `${o.method} ${o.template}`;
    o.seen.set(line.status, (o.seen.get(line.status) || 0) + 1);
    resp = r.obj;
    respSegs = r.where || [...o.segs, 'responses', r.key];
  } else {
    // 405 only where the path exists with another method; 404 also there (the router's
    // {param} segments accept ids only, so such a path may still be unknown to it).
    const rr = routerResponse('any-request', line.status) ||
               (o || (line.status === 405 && !pathSeen) ? null : routerResponse('no-operation', line.status));
    if (!rr) {
      if (o) {
        const l = `${o.method} ${o.template}`;
        o.seen.set(line.status, (o.seen.get(line.status) || 0) + 1);
        fail('status', `${l} ${line.status}`, `${reqText}: status ${line.status} is not documented for ${l} (${where})`);
      } else {
        fail('undescribed', `${method} ${p}`, `${reqText}: no operation describes ${method} ${p}, and ${line.status} is not one of the router's answers (x-agentclear-router) (${where})`);
      }
      return;
    }
    label = `router ${line.status}`;
    const k = `${method} ${o ? o.template : p} ${line.status}`;
    unroutedSeen.set(k, (unroutedSeen.get(k) || 0) + 1);
    resp = rr.obj;
    respSegs = rr.where;
  }
  const problems = checkResponse(line, resp, respSegs);
  for (const pr of problems) fail('body', `${label} ${line.status} ${pr.replace(/"[^"]*"/g, '…')}`, `${reqText}: ${pr} (${where})`);
}

if (failures.length === 0) {
  for (const file of opts.logs) {
    let text;
    try { text = fs.readFileSync(file, 'utf8'); } catch (e) { fail('log', file, `cannot read ${file}: ${e.message}`); continue; }
    const lines = text.split('\n');
    lines.forEach((l, i) => {
      if (l === '') return;
      const where = `${path.basename(file)}:${i + 1}`;
      let line;
      try { line = JSON.parse(l); } catch (e) { fail('log', where, `${where}: not a JSON line: ${e.message}`); return; }
      try { handle(line, where); } catch (e) { fail('internal', e.message, `${where}: ${e.stack}`); }
    });
  }
  if (total === 0) fail('log', 'empty', `no responses logged in ${opts.logs.join(', ')}: was AC_HTTP_LOG set for the tests?`);
}

// ---- report -------------------------------------------------------------------------------------------

console.log(`validate-responses: ${total} responses checked against ${path.relative(process.cwd(), opts.spec) || opts.spec}`);
for (const o of ops) {
  const n = [...o.seen.values()].reduce((a, b) => a + b, 0);
  const by = [...o.seen.entries()].sort((a, b) => a[0] - b[0]).map(([s, c]) => `${s}:${c}`).join(' ');
  console.log(`  ${String(n).padStart(7)}  ${o.method.padEnd(6)} ${o.template}${by ? '  (' + by + ')' : ''}`);
}
for (const [k, n] of unroutedSeen) console.log(`  ${String(n).padStart(7)}  router: ${k.length > 100 ? k.slice(0, 97) + '...' : k}`);
const never = ops.filter((o) => o.seen.size === 0).map((o) => `${o.method} ${o.template}`);
if (never.length) console.log(`  never exercised (informational): ${never.join(', ')}`);

if (failures.length) {
  // Every failure is counted; identical ones (same kind, operation, status and message shape)
  // are printed three times at most.
  const groups = new Map();
  for (const f of failures) {
    const k = `${f.kind} ${f.key}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(f.text);
  }
  console.log(`validate-responses: FAILED: ${failures.length} mismatch(es) in ${groups.size} group(s)`);
  for (const [k, texts] of groups) {
    console.log(`- [${k.split(' ')[0]}] ${texts.length} time(s):`);
    for (const t of texts.slice(0, 3)) console.log(`    ${t}`);
  }
  process.exit(1);
}
console.log('validate-responses: all responses match the document');
