// The web client's typed access to the Vestnik HTTP API: a thin layer over
// openapi-fetch, whose `paths`/`components` types (./schema.d.ts) are generated
// from the server's OpenAPI document on every check. Nothing here restates a
// schema by hand: every request and response type is looked up in the
// generated types, so a change of the document shows up as a type error here
// (or in contract-check.ts) instead of at run time.

import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type { components, paths };

/** Every named schema of the document. */
export type Schemas = components["schemas"];

/** The one error shape every endpoint answers with: `{"error": {"code", "message", ...}}`. */
export type ErrorBody = Schemas["ErrorBody"];
/** `ErrorBody["error"]`: `code` (stable, snake_case), `message`, and extras such as `retry_after_secs`. */
export type ErrorDetail = ErrorBody["error"];

// Type lookups into the generated operations.
type JsonContent<T> = T extends { content: { "application/json": infer C } } ? C : never;
/** The JSON request body of an operation (`paths[path][method]`). */
export type RequestJson<Op> = Op extends { requestBody?: infer R } ? JsonContent<NonNullable<R>> : never;
/** The JSON response body of an operation for one status, `never` if the status is not documented. */
export type ResponseJson<Op, Status extends number> = Op extends { responses: infer R }
  ? Status extends keyof R
    ? JsonContent<R[Status]>
    : never
  : never;
/** The query parameters of an operation. */
export type QueryParams<Op> = Op extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

type Post<P extends keyof paths> = paths[P]["post"];
type Get<P extends keyof paths> = paths[P]["get"];

export type RegisterRequest = RequestJson<Post<"/v1/auth/register">>;
export type Accepted = ResponseJson<Post<"/v1/auth/register">, 202>;
export type VerifyRequest = RequestJson<Post<"/v1/auth/register/verify">>;
export type LoginRequest = RequestJson<Post<"/v1/auth/login">>;
export type RefreshRequest = RequestJson<Post<"/v1/auth/refresh">>;
export type SessionTokens = ResponseJson<Post<"/v1/auth/login">, 201>;
export type ConversationList = ResponseJson<Get<"/v1/conversations">, 200>;
export type Conversation = ResponseJson<Post<"/v1/conversations">, 201>;
export type CreateConversation = RequestJson<Post<"/v1/conversations">>;
export type SendMessage = RequestJson<Post<"/v1/messages">>;
export type Sent = ResponseJson<Post<"/v1/messages">, 200>;
export type PendingQuery = QueryParams<Get<"/v1/messages/pending">>;
export type PendingPage = ResponseJson<Get<"/v1/messages/pending">, 200>;
/** One item of `pending` (and one WebSocket frame): discriminated by `type`. */
export type ServerFrame = Schemas["ServerFrame"];
export type AckRequest = RequestJson<Post<"/v1/messages/ack">>;
export type WsTicket = ResponseJson<Post<"/v1/ws/ticket">, 200>;
export type WsQuery = QueryParams<Get<"/v1/ws">>;

/** A helper's answer: the documented body, or the server's `ErrorBody` with its status. */
export type ApiResult<T> =
  | { readonly ok: true; readonly status: number; readonly data: T }
  | { readonly ok: false; readonly status: number; readonly error: ErrorBody };

/** An answer that is neither a success nor an `ErrorBody` (a proxy's error page, say). */
export class UnexpectedResponseError extends Error {
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: unknown) {
    super(`unexpected HTTP ${String(status)} answer without an ErrorBody`);
    this.name = "UnexpectedResponseError";
    this.status = status;
    this.body = body;
  }
}

/** Whether a parsed response body has the server's error shape. */
export function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const detail: unknown = value.error;
  return (
    typeof detail === "object" &&
    detail !== null &&
    "code" in detail &&
    typeof detail.code === "string" &&
    "message" in detail &&
    typeof detail.message === "string"
  );
}

/** openapi-fetch's result, with the error type constrained to what the document declares. */
type Fetched<D, E> =
  | { data: D; error?: never; response: Response }
  | { data?: never; error: E; response: Response };

// `E extends ErrorBody`: an operation that documents any other error body
// fails to compile here. The body itself is checked at run time too, since a
// status the document leaves out (or a proxy in between) can still answer.
function result<D, E extends ErrorBody | undefined>(fetched: Fetched<D, E>): ApiResult<D> {
  const { response } = fetched;
  if (response.ok) return { ok: true, status: response.status, data: fetched.data as D };
  if (isErrorBody(fetched.error)) return { ok: false, status: response.status, error: fetched.error };
  throw new UnexpectedResponseError(response.status, fetched.error);
}

/** Returns the current access token, or nothing when logged out. */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

export interface VestnikClient {
  /** The openapi-fetch client that sends the bearer token, for endpoints without a helper. */
  readonly api: Client<paths>;
  /** Start registration: a 6-digit code is mailed. */
  register(body: RegisterRequest): Promise<ApiResult<Accepted>>;
  /** Finish registration with the mailed code, the password and the first device. */
  verify(body: VerifyRequest): Promise<ApiResult<SessionTokens>>;
  /** Log in a new device. */
  login(body: LoginRequest): Promise<ApiResult<SessionTokens>>;
  /** Trade a refresh token (which works once) for a new pair. */
  refresh(refreshToken: RefreshRequest["refresh_token"]): Promise<ApiResult<SessionTokens>>;
  listConversations(): Promise<ApiResult<ConversationList>>;
  /** Opens (200: found, 201: created) a direct conversation, or creates a group or channel. */
  createConversation(body: CreateConversation): Promise<ApiResult<Conversation>>;
  /** `POST /v1/messages`; 409 `device_list_stale` carries the devices to encrypt for in `error.devices`. */
  send(body: SendMessage): Promise<ApiResult<Sent>>;
  /** What waits for this device, oldest first; `after` is the last item's `cursor`. */
  pending(query?: PendingQuery): Promise<ApiResult<PendingPage>>;
  /** Acknowledge stored items by their cursors (204). */
  ack(cursors: AckRequest["cursors"]): Promise<ApiResult<undefined>>;
  /** A single-use ticket for the WebSocket, valid for `expires_in` seconds. */
  wsTicket(): Promise<ApiResult<WsTicket>>;
  /** The `ws://`/`wss://` address of `/v1/ws` with a ticket from `wsTicket()`. */
  wsUrl(ticket: NonNullable<WsQuery["ticket"]>): string;
}

/**
 * A client for the server at `baseUrl` (e.g. `https://chat.example.org`).
 * `getToken` is asked for the access token before every authenticated
 * request; register, verify, login and refresh never send it.
 * `options` go to openapi-fetch (e.g. `fetch` for tests).
 */
export function createVestnikClient(
  baseUrl: string,
  getToken: TokenSource,
  options: Omit<ClientOptions, "baseUrl"> = {},
): VestnikClient {
  const root = baseUrl.replace(/\/+$/, "");
  const anonymous = createClient<paths>({ ...options, baseUrl: root });
  const api = createClient<paths>({ ...options, baseUrl: root });
  const bearer: Middleware = {
    async onRequest({ request }) {
      const token = await getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  };
  api.use(bearer);

  return {
    api,
    register: async (body) => result(await anonymous.POST("/v1/auth/register", { body })),
    verify: async (body) => result(await anonymous.POST("/v1/auth/register/verify", { body })),
    login: async (body) => result(await anonymous.POST("/v1/auth/login", { body })),
    refresh: async (refreshToken) => {
      const body: RefreshRequest = { refresh_token: refreshToken };
      return result(await anonymous.POST("/v1/auth/refresh", { body }));
    },
    listConversations: async () => result(await api.GET("/v1/conversations")),
    createConversation: async (body) => result(await api.POST("/v1/conversations", { body })),
    send: async (body) => result(await api.POST("/v1/messages", { body })),
    // Needs `after` and `limit` documented as optional query parameters
    // (contract-check.ts: pending_takes_after_and_limit_in_query).
    pending: async (query = {}) => result(await api.GET("/v1/messages/pending", { params: { query } })),
    ack: async (cursors) => {
      const body: AckRequest = { cursors };
      return result(await api.POST("/v1/messages/ack", { body }));
    },
    wsTicket: async () => result(await api.POST("/v1/ws/ticket")),
    wsUrl: (ticket) => {
      const url = new URL(`${root}${"/v1/ws" satisfies keyof paths}`);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      url.searchParams.set("ticket" satisfies keyof WsQuery, ticket);
      return url.toString();
    },
  };
}
