export declare const demo: {
  tenantName: string;
  host: string;
  assistantName: string;
  toolName: string;
  otherTenantName: string;
  accounts: { owner: string; admin: string; user: string; betaOwner: string };
};

export interface HttpJsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface HttpJsonOptions {
  body?: unknown;
  token?: string;
  host?: string;
  headers?: Record<string, string>;
}

export declare function httpJson(baseUrl: string, method: string, path: string, options?: HttpJsonOptions): Promise<HttpJsonResponse>;

export interface SeededDemo {
  tenantId: string;
  assistantId: string;
  host: string;
  users: { owner: string; admin: string; user: string };
  beta: { tenantId: string; userId: string };
}

export declare function seedDemo(options: {
  gatewayUrl: string;
  toolUrl: string;
  passwords: Record<'owner' | 'admin' | 'user' | 'betaOwner', string>;
}): Promise<SeededDemo>;
export declare function signIn(gatewayUrl: string, email: string, password: string, tenantId: string): Promise<string>;
