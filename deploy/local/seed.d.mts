export declare const demo: {
  tenantName: string;
  host: string;
  assistantName: string;
  toolName: string;
  otherTenantName: string;
  accounts: { owner: string; admin: string; user: string; betaOwner: string };
  /** E.164 phone numbers the demo accounts sign up with. */
  phones: { owner: string; admin: string; user: string; betaOwner: string };
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
  /** The auth service's SMS_OUTBOX_FILE (SMS_PROVIDER=file); phone codes are read from it. */
  smsOutboxFile: string;
}): Promise<SeededDemo>;
/** The newest code in the development SMS outbox for this phone number, if any. */
export declare function newestSmsCode(smsOutboxFile: string, phone: string): Promise<string | undefined>;
export declare function signIn(gatewayUrl: string, email: string, password: string, tenantId: string): Promise<string>;
