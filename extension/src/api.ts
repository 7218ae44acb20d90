// The extension's client of the OdooOps HTTP API: contract-typed, and its errors carry the server's
// hint so notifications can say what to do next.
import * as C from '../../contract/index.ts';

export class ApiError extends Error {
  readonly hint: string | undefined;
  readonly status: number;
  constructor(message: string, status: number, hint?: string) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

export class Api {
  readonly url: string;
  readonly token: string;
  constructor(url: string, token: string) {
    this.url = url;
    this.token = token;
  }

  async request<T>(method: string, path: string, schema: { parse(v: unknown): T }, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.url), {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(`cannot reach the OdooOps server at ${this.url}: ${(err as Error).message}`, 0, 'Start it (npm start) or run "OdooOps: Connect…" with its URL.');
    }
    const text = await res.text();
    const json = text ? (JSON.parse(text) as unknown) : null;
    if (!res.ok) {
      const e = C.ApiError.safeParse(json);
      throw new ApiError(e.success ? e.data.error.message : `HTTP ${res.status}`, res.status, e.success ? e.data.error.hint : undefined);
    }
    return schema.parse(json);
  }

  get<T>(path: string, schema: { parse(v: unknown): T }): Promise<T> {
    return this.request('GET', path, schema);
  }
}
