// Loopback OpenID Connect provider for Conclave's integration tests.
//
// A real OP (npm `oidc-provider`) at http://127.0.0.1:PORT, with no login UI
// and a few control endpoints under /__test/ that let a test define accounts,
// choose who logs in, tamper with ID tokens and rotate the signing key.
//
//   node provider.mjs [--port N] [--verbose] [--ignore-stdin]
//
// Prints exactly one JSON line to stdout when ready ({"issuer": "..."}); all
// logs go to stderr. It exits when stdin closes, so a test process that dies
// cannot leave it running (pass --ignore-stdin to run it by hand in the
// background).
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';

// oidc-provider prints its notices with console.info, which would corrupt the
// single-line stdout protocol: route everything but the ready line to stderr.
console.log = console.info = console.warn = console.error;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    verbose: { type: 'boolean', default: false },
    'ignore-stdin': { type: 'boolean', default: false },
  },
});

const SCOPES = ['openid', 'email', 'profile', 'groups'];
const TAMPER_MODES = ['none', 'wrong_audience', 'wrong_nonce', 'expired', 'bad_signature', 'wrong_issuer'];

// ---- State shared by every Provider instance --------------------------------
// Rotation builds a new Provider (its keystore is fixed at construction), so
// everything that must survive it lives at module level: the adapter storage
// (clients, sessions, grants, codes...), the cookie keys and the accounts.

const store = new Map(); // "Model:id" -> payload, plus secondary indexes
const cookieKeys = [randomBytes(32).toString('hex')];
const accounts = new Map(); // lower-cased email -> account
let nextLoginEmail = null; // used when the request carries no known login_hint
let tamperMode = 'none';

// Minimal unbounded adapter; the built-in memory adapter is an LRU that could
// evict registered clients during a long test run.
class SharedAdapter {
  constructor(model) { this.model = model; }
  key(id) { return `${this.model}:${id}`; }
  async upsert(id, payload) {
    store.set(this.key(id), payload);
    if (this.model === 'Session') store.set(`uid:${payload.uid}`, id);
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, id);
    if (payload.grantId) {
      const members = store.get(`grant:${payload.grantId}`) ?? new Set();
      store.set(`grant:${payload.grantId}`, members.add(this.key(id)));
    }
  }
  async find(id) { return store.get(this.key(id)); }
  async findByUid(uid) { return this.find(store.get(`uid:${uid}`)); }
  async findByUserCode(code) { return this.find(store.get(`userCode:${code}`)); }
  async consume(id) { Object.assign(store.get(this.key(id)) ?? {}, { consumed: Math.floor(Date.now() / 1000) }); }
  async destroy(id) { store.delete(this.key(id)); }
  async revokeByGrantId(grantId) {
    for (const key of store.get(`grant:${grantId}`) ?? []) store.delete(key);
    store.delete(`grant:${grantId}`);
  }
}

// ---- Keys --------------------------------------------------------------------

async function newRsaKey(kid) {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  kid ??= `conclave-test-${randomBytes(8).toString('hex')}`;
  return { kid, privateKey, jwk: { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' } };
}

// Signs the `bad_signature` tokens: a different RSA key that is never
// published, so a relying party finds the right kid but a failing signature.
const impostorKey = await newRsaKey();
let signingKey;

// ---- Accounts and login choice ------------------------------------------------

function accountFor(email) {
  return typeof email === 'string' ? accounts.get(email.toLowerCase()) : undefined;
}

// login_hint naming a registered account wins; otherwise the next-login choice.
function chooseAccount(loginHint) {
  return accountFor(loginHint) ?? accountFor(nextLoginEmail);
}

async function findAccount(ctx, sub) {
  const account = [...accounts.values()].find((a) => a.sub === sub);
  if (!account) return undefined;
  return {
    accountId: sub,
    async claims() {
      const { sub: s, email, email_verified: verified, name, groups } = account;
      return { sub: s, email, email_verified: verified, ...(name !== undefined && { name }), ...(groups && { groups }) };
    },
  };
}

// The default login prompt keeps an existing session; a test that reuses one
// cookie jar for two users must get the account it asked for instead.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'chosen_account_differs',
  'the requested test account is not the one logged in',
  (ctx) => {
    const chosen = chooseAccount(ctx.oidc.params.login_hint);
    const current = ctx.oidc.session.accountId;
    return Boolean(chosen && current && chosen.sub !== current);
  },
));

// ---- Provider ----------------------------------------------------------------

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    adapter: SharedAdapter,
    findAccount,
    jwks: { keys: [signingKey.jwk] },
    cookies: { keys: cookieKeys },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    scopes: SCOPES,
    conformIdTokenClaims: false, // scope claims go into the ID token itself
    responseTypes: ['code'],
    pkce: { required: () => true },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true }, // open RFC 7591 registration, no initial token
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}`, policy },
    // A short ID token lifetime keeps `expired` tokens (exp - 1 h) well past
    // any clock-skew leeway a relying party allows.
    ttl: { IdToken: 600, AccessToken: 600, AuthorizationCode: 120, Interaction: 600, Session: 3600, Grant: 3600 },
    clientBasedCORS: () => true,
    renderError(ctx, out) {
      ctx.type = 'text/plain';
      ctx.body = `${out.error}: ${out.error_description ?? ''}\n`;
    },
  });

  // Post-process token endpoint responses: re-sign the ID token as the
  // current tamper mode says, keeping its header (alg, kid) unchanged.
  provider.use(async (ctx, next) => {
    await next();
    if (tamperMode !== 'none' && ctx.oidc?.route === 'token' && ctx.status === 200 && ctx.body?.id_token) {
      ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
    }
  });

  for (const event of ['server_error', 'authorization.error', 'grant.error', 'registration_create.error', 'userinfo.error']) {
    provider.on(event, (ctx, err) => console.error(`oidc ${event}: ${err?.message ?? ctx?.message} ${err?.error_description ?? ''}`));
  }
  return provider;
}

async function tamper(idToken) {
  const header = decodeProtectedHeader(idToken);
  const claims = decodeJwt(idToken);
  if (tamperMode === 'wrong_audience') claims.aud = 'someone-else';
  if (tamperMode === 'wrong_nonce') claims.nonce = `tampered-${randomBytes(8).toString('hex')}`;
  if (tamperMode === 'wrong_issuer') claims.iss = 'http://evil.example';
  if (tamperMode === 'expired') { claims.exp -= 3600; claims.iat -= 3600; }
  const key = tamperMode === 'bad_signature' ? impostorKey.privateKey : signingKey.privateKey;
  return new SignJWT(claims).setProtectedHeader(header).sign(key);
}

// ---- Interactions: no UI, log the chosen account in and consent at once -------

async function interaction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { params, prompt } = details;
  const account = chooseAccount(params.login_hint);
  if (!account) {
    return text(res, 400, `no test account to log in: login_hint ${JSON.stringify(params.login_hint ?? null)} `
      + 'is not a registered account and no POST /__test/next-login is set\n');
  }

  // Switching accounts inside one session would make oidc-provider show a
  // logout confirmation page; drop the old session so the flow stays automatic.
  if (details.session && details.session.accountId !== account.sub) {
    const old = await provider.Session.findByUid(details.session.uid);
    await old?.destroy();
    delete details.session;
    await details.save(details.exp - Math.floor(Date.now() / 1000));
  }

  const grant = new provider.Grant({ accountId: account.sub, clientId: params.client_id });
  grant.addOIDCScope(String(params.scope ?? '').split(' ').filter((s) => SCOPES.includes(s)).join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();

  await provider.interactionFinished(req, res, {
    login: { accountId: account.sub },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

// ---- Control endpoints ----------------------------------------------------------

async function control(req, res, path) {
  if (req.method === 'GET' && path === '/__test/health') {
    return json(res, 200, { status: 'ok', issuer, kid: signingKey.kid, tamper: tamperMode });
  }
  if (req.method !== 'POST') return text(res, 405, 'use POST\n');
  const body = await readJson(req);

  switch (path) {
    case '/__test/accounts': {
      const { email, sub, name, email_verified: verified = true, groups } = body;
      if (typeof email !== 'string' || !email.includes('@')) return text(res, 400, 'email is required\n');
      if (sub !== undefined && (typeof sub !== 'string' || !sub)) return text(res, 400, 'sub must be a non-empty string\n');
      if (name !== undefined && typeof name !== 'string') return text(res, 400, 'name must be a string\n');
      if (typeof verified !== 'boolean') return text(res, 400, 'email_verified must be a boolean\n');
      if (groups !== undefined && !(Array.isArray(groups) && groups.every((g) => typeof g === 'string'))) {
        return text(res, 400, 'groups must be an array of strings\n');
      }
      const derived = `sub-${createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 16)}`;
      const account = { email, sub: sub ?? derived, name, email_verified: verified, groups };
      // A sub belongs to one account only: replacing it drops the old holder.
      for (const [key, other] of accounts) if (other.sub === account.sub) accounts.delete(key);
      accounts.set(email.toLowerCase(), account);
      return text(res, 204);
    }
    case '/__test/next-login': {
      if (body.email !== null && typeof body.email !== 'string') return text(res, 400, 'email must be a string or null\n');
      nextLoginEmail = body.email;
      return text(res, 204);
    }
    case '/__test/tamper': {
      if (!TAMPER_MODES.includes(body.mode)) return text(res, 400, `mode must be one of ${TAMPER_MODES.join(', ')}\n`);
      tamperMode = body.mode;
      return text(res, 204);
    }
    case '/__test/rotate': {
      await installProvider(await newRsaKey());
      return json(res, 200, { kid: signingKey.kid });
    }
    default:
      return text(res, 404, 'unknown control endpoint\n');
  }
}

// ---- HTTP plumbing -------------------------------------------------------------

function send(res, status, type, body) {
  res.writeHead(status, body ? { 'content-type': type } : {});
  res.end(body);
}
const text = (res, status, body = '') => send(res, status, 'text/plain; charset=utf-8', body);
const json = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));

async function readJson(req) {
  let raw = '';
  for await (const chunk of req) {
    raw += chunk;
    if (raw.length > 65536) throw new HttpError(413, 'body too large');
  }
  try {
    const value = JSON.parse(raw || '{}');
    if (value && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch { /* fall through */ }
  throw new HttpError(400, 'body must be a JSON object');
}

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

let issuer;
let current; // { provider, handle }: swapped as a whole on rotation

const server = createServer(async (req, res) => {
  if (args.verbose) res.on('finish', () => console.error(`${req.method} ${req.url} -> ${res.statusCode}`));
  try {
    if (!current) return text(res, 503, 'starting\n');
    const { pathname } = new URL(req.url, issuer);
    if (pathname.startsWith('/__test/')) return await control(req, res, pathname);
    if (pathname.startsWith('/interaction/')) return await interaction(current.provider, req, res);
    return current.handle(req, res);
  } catch (err) {
    if (!(err instanceof HttpError)) console.error(`error on ${req.method} ${req.url}:`, err);
    const reason = err.error_description ? `${err.message}: ${err.error_description}` : err.message;
    if (!res.headersSent) text(res, err.status ?? err.statusCode ?? 500, `${reason}\n`);
  }
});

// (Re)builds the provider around a signing key; state outside it is shared.
async function installProvider(key) {
  signingKey = key;
  const provider = buildProvider(issuer);
  current = { provider, handle: provider.callback() };
  console.error(`OIDC provider at ${issuer} signs with kid ${key.kid}`);
}

server.listen(Number(args.port), '127.0.0.1', async () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  await installProvider(await newRsaKey());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
if (!args['ignore-stdin']) {
  process.stdin.on('end', stop).on('close', stop).on('error', stop).resume();
}
