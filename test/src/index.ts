export * from './infra.js';
export * from './audit-recorder.js';
export * from './oidc-provider.js';
export * from './github-oauth.js';
export * from './oauth-browser.js';
