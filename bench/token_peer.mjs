// The peer bench/tokens.py measures the hub's token endpoint against: node's oidc-provider (from
// npm, installed under tests/oidc by `make oidc`) issuing what the hub issues: tokens for the
// client credentials grant, the client authenticated by client_secret_basic, as JWT access
// tokens signed ES256 for one audience and one scope.
// `node token_peer.mjs PORT CONFIG.json` serves http://127.0.0.1:PORT and prints "listening".
// CONFIG names the provider's module, the issuer, the client, the scope, the audience and the
// private signing key (a JWK).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [port, configPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const { default: Provider } = await import(pathToFileURL(config.provider).href);

const resourceServer = {
  scope: config.scope,
  audience: config.audience,
  accessTokenTTL: 600,
  accessTokenFormat: 'jwt',
  jwt: { sign: { alg: 'ES256' } },
};

const provider = new Provider(config.issuer, {
  clients: [{
    client_id: config.client_id,
    client_secret: config.client_secret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256', // the only key is an EC one
  }],
  jwks: { keys: [config.jwk] },
  scopes: [config.scope],
  cookies: { keys: ['bench-only-bench-only'] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => resourceServer,
    },
  },
});

provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
