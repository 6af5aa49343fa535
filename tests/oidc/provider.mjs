// The provincial identity platform as the tests see it: node's oidc-provider (from npm) with a
// login page of its own, since the development login that comes with it loads a web font from
// outside. `node provider.mjs PORT CONFIG.json` serves http://127.0.0.1:PORT and prints
// "listening" once it answers. CONFIG names the issuer, the hub as a client, and the people
// with their passwords and claims. Consent is not asked: the hub is the platform's own client.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const people = config.people;

const provider = new Provider(config.issuer, {
  clients: [{
    ...config.client,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  scopes: ['openid', 'profile', 'hub'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    hub: ['hub_department', 'hub_roles'],
  },
  cookies: { keys: ['only-for-tests-only-for-tests'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...person.claims }) };
  },
  async loadExistingGrant(ctx) {
    const { oidc } = ctx;
    const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(oidc.client.clientId);
    if (grantId) return oidc.provider.Grant.find(grantId);
    const grant = new oidc.provider.Grant({ clientId: oidc.client.clientId, accountId: oidc.session.accountId });
    grant.addOIDCScope('openid profile hub');
    await grant.save();
    return grant;
  },
});

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(res, uid, status, message) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<title>省统一身份认证平台（测试）</title><link rel="icon" href="data:,"></head>
<body><h1>省统一身份认证平台（测试）</h1>${message ? `<p role="alert">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>账号 <input name="login" autocomplete="username"></label>
<label>密码 <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">登录</button></form></body></html>`);
}

async function body(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function interaction(req, res) {
  const [, , uid, step] = new URL(req.url, config.issuer).pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name !== 'login') {
    res.writeHead(501).end('not a login prompt');
    return;
  }
  if (req.method === 'GET') {
    loginPage(res, uid, 200);
  } else if (step === 'login') {
    const form = await body(req);
    const person = people[form.get('login')];
    if (!person || person.password !== form.get('password')) {
      loginPage(res, uid, 401, '账号或密码不正确');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: form.get('login') } }, {
      mergeWithLastSubmission: false,
    });
  } else {
    res.writeHead(404).end();
  }
}

const handle = provider.callback();
http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((error) => {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(String(error.message));
    });
  } else {
    handle(req, res);
  }
}).listen(Number(port), '127.0.0.1', () => console.log('listening'));
