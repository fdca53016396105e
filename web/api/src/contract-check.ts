// Compile-time checks of what the web client relies on in the OpenAPI document.
// Nothing here runs: each `Expect<...>` fails `tsc` ("Type 'false' does not
// satisfy the constraint 'true'", on the line of the broken promise) when the
// generated types lose or change something below. Field types that the server
// may still narrow (free strings becoming enums, say) are checked with
// `Accepts`, so narrowing passes and only losing a value fails.

import type { paths, Schemas } from "./client";

/** Fails to compile unless T is `true`. */
type Expect<T extends true> = T;
/** Exactly the same type (optional and readonly modifiers included). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the usual exact-equality idiom
type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
/** Every value of V is a valid T (T may be wider). */
type Accepts<T, V> = [V] extends [T] ? true : false;
/** T has a required property K of exactly type V. */
type Required_<T, K extends PropertyKey, V> = K extends keyof T ? Equal<Pick<T, K>, Record<K, V>> : false;
/** T has a property K, optional or not, that accepts every value of V. */
type Property<T, K extends PropertyKey, V> = K extends keyof T ? Accepts<T[K], V> : false;

type Op<P extends keyof paths, M extends keyof paths[P]> = paths[P][M];
type Responses<O> = O extends { responses: infer R } ? R : never;
type Json<Response> = Response extends { content: { "application/json": infer C } } ? C : "no JSON body documented";
type Digit = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9;
type IsSuccess<S> = S extends number ? (`${S}` extends `2${Digit}${Digit}` ? true : false) : S extends "2XX" ? true : false;
type IsError<S> = S extends number
  ? `${S}` extends `4${Digit}${Digit}` | `5${Digit}${Digit}`
    ? true
    : false
  : S extends "4XX" | "5XX" | "default"
    ? true
    : false;
/** The documented success statuses of an operation. */
type SuccessStatus<O> = { [S in keyof Responses<O>]: IsSuccess<S> extends true ? S : never }[keyof Responses<O>];
/** The bodies of its success answers (what openapi-fetch gives as `data`). */
type SuccessJson<O> = { [S in keyof Responses<O>]: IsSuccess<S> extends true ? Json<Responses<O>[S]> : never }[keyof Responses<O>];
/** The bodies of all its documented 4xx/5xx answers. */
type ErrorJson<O> = { [S in keyof Responses<O>]: IsError<S> extends true ? Json<Responses<O>[S]> : never }[keyof Responses<O>];
/** The body of one status, `"status not documented"` when it is missing. */
type StatusJson<O, S extends number> = S extends keyof Responses<O> ? Json<Responses<O>[S]> : "status not documented";
type BodyJson<O> = O extends { requestBody: { content: { "application/json": infer B } } } ? B : "no required JSON body";
type RequiredKeys<T> = { [K in keyof T]-?: T extends Record<K, unknown> ? K : never }[keyof T];
type Parameters_<O> = O extends { parameters: infer P } ? P : never;

type S = Schemas;
type ErrorBody = S["ErrorBody"];

// ---- The error shape: {"error": {"code", "message", ...}} -------------------------------

export type ErrorBody_has_error = Expect<Required_<ErrorBody, "error", S["ErrorDetail"]>>;
export type ErrorDetail_has_code = Expect<Required_<S["ErrorDetail"], "code", string>>;
export type ErrorDetail_has_message = Expect<Required_<S["ErrorDetail"], "message", string>>;
// 409 device_list_stale on send: the devices to encrypt for.
export type ErrorDetail_has_devices = Expect<Property<S["ErrorDetail"], "devices", S["PublicDevice"][]>>;
// 429: how long to wait.
export type ErrorDetail_has_retry_after_secs = Expect<Property<S["ErrorDetail"], "retry_after_secs", number>>;
// proof_of_work_required on register/verify/login: the challenge to solve.
export type ErrorDetail_has_pow = Expect<Property<S["ErrorDetail"], "pow", S["PowChallenge"]>>;

// ---- Every error answer of the operations the client calls is an ErrorBody --------------

export type register_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/auth/register", "post">>, ErrorBody>>;
export type verify_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/auth/register/verify", "post">>, ErrorBody>>;
export type login_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/auth/login", "post">>, ErrorBody>>;
export type refresh_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/auth/refresh", "post">>, ErrorBody>>;
export type list_conversations_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/conversations", "get">>, ErrorBody>>;
export type create_conversation_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/conversations", "post">>, ErrorBody>>;
export type send_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/messages", "post">>, ErrorBody>>;
export type pending_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/messages/pending", "get">>, ErrorBody>>;
export type ack_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/messages/ack", "post">>, ErrorBody>>;
export type ws_ticket_errors_are_ErrorBody = Expect<Equal<ErrorJson<Op<"/v1/ws/ticket", "post">>, ErrorBody>>;

// ---- 401 is documented (as an ErrorBody) where the client reacts to it ------------------
// Bearer endpoints: an expired access token answers 401, and the client refreshes.
export type list_conversations_401 = Expect<Equal<StatusJson<Op<"/v1/conversations", "get">, 401>, ErrorBody>>;
export type create_conversation_401 = Expect<Equal<StatusJson<Op<"/v1/conversations", "post">, 401>, ErrorBody>>;
export type send_401 = Expect<Equal<StatusJson<Op<"/v1/messages", "post">, 401>, ErrorBody>>;
export type pending_401 = Expect<Equal<StatusJson<Op<"/v1/messages/pending", "get">, 401>, ErrorBody>>;
export type ack_401 = Expect<Equal<StatusJson<Op<"/v1/messages/ack", "post">, 401>, ErrorBody>>;
export type ws_ticket_401 = Expect<Equal<StatusJson<Op<"/v1/ws/ticket", "post">, 401>, ErrorBody>>;
// A refused refresh token (or password) answers 401: the client logs out (or asks again).
export type refresh_401 = Expect<Equal<StatusJson<Op<"/v1/auth/refresh", "post">, 401>, ErrorBody>>;
export type login_401 = Expect<Equal<StatusJson<Op<"/v1/auth/login", "post">, 401>, ErrorBody>>;

// ---- Request bodies and answers are the named schemas the web client imports ------------

export type register_body = Expect<Equal<BodyJson<Op<"/v1/auth/register", "post">>, S["RegisterRequest"]>>;
export type register_answer = Expect<Equal<SuccessJson<Op<"/v1/auth/register", "post">>, S["Accepted"]>>;
export type verify_body = Expect<Equal<BodyJson<Op<"/v1/auth/register/verify", "post">>, S["VerifyRequest"]>>;
export type verify_answer = Expect<Equal<SuccessJson<Op<"/v1/auth/register/verify", "post">>, S["SessionTokens"]>>;
export type login_body = Expect<Equal<BodyJson<Op<"/v1/auth/login", "post">>, S["LoginRequest"]>>;
export type login_answer = Expect<Equal<SuccessJson<Op<"/v1/auth/login", "post">>, S["SessionTokens"]>>;
export type refresh_body = Expect<Equal<BodyJson<Op<"/v1/auth/refresh", "post">>, S["RefreshRequest"]>>;
export type refresh_answer = Expect<Equal<SuccessJson<Op<"/v1/auth/refresh", "post">>, S["SessionTokens"]>>;
export type list_conversations_answer = Expect<Equal<SuccessJson<Op<"/v1/conversations", "get">>, S["ConversationList"]>>;
export type create_conversation_body = Expect<Equal<BodyJson<Op<"/v1/conversations", "post">>, S["CreateConversation"]>>;
export type create_conversation_answer = Expect<Equal<SuccessJson<Op<"/v1/conversations", "post">>, S["Conversation"]>>;
// 200: an existing direct conversation was found; 201: a new one was created.
export type create_conversation_statuses = Expect<Equal<SuccessStatus<Op<"/v1/conversations", "post">>, 200 | 201>>;
export type send_body = Expect<Equal<BodyJson<Op<"/v1/messages", "post">>, S["SendMessage"]>>;
export type send_answer = Expect<Equal<SuccessJson<Op<"/v1/messages", "post">>, S["Sent"]>>;
export type pending_answer = Expect<Equal<SuccessJson<Op<"/v1/messages/pending", "get">>, S["PendingPage"]>>;
export type ack_body = Expect<Equal<BodyJson<Op<"/v1/messages/ack", "post">>, S["AckRequest"]>>;
export type ack_answers_204_without_body = Expect<Equal<SuccessStatus<Op<"/v1/messages/ack", "post">>, 204>>;
export type ws_ticket_answer = Expect<Equal<SuccessJson<Op<"/v1/ws/ticket", "post">>, S["WsTicket"]>>;

// ---- Query parameters -------------------------------------------------------------------
// `GET /v1/messages/pending?after=&limit=`: both optional, in the query (not the path).
export type pending_takes_after_and_limit_in_query = Expect<
  Accepts<Parameters_<Op<"/v1/messages/pending", "get">>, { query: { after: number; limit: number } }>
>;
export type pending_parameters_all_optional = Expect<
  Equal<RequiredKeys<Parameters_<Op<"/v1/messages/pending", "get">>>, never>
>;
// `/v1/ws?ticket=`
export type ws_takes_ticket_in_query = Expect<Accepts<Parameters_<Op<"/v1/ws", "get">>, { query: { ticket: string } }>>;

// ---- Fields -----------------------------------------------------------------------------

export type RegisterRequest_email_only = Expect<Accepts<S["RegisterRequest"], { email: string }>>;
export type VerifyRequest_fields = Expect<
  Accepts<S["VerifyRequest"], { email: string; code: string; password: string; device: S["NewDeviceRequest"] }>
>;
export type LoginRequest_fields = Expect<
  Accepts<S["LoginRequest"], { email: string; password: string; device: S["NewDeviceRequest"] }>
>;
export type LoginRequest_totp = Expect<Property<S["LoginRequest"], "totp", string>>;
export type NewDeviceRequest_fields = Expect<
  Accepts<
    S["NewDeviceRequest"],
    { name: string; platform: string; identity_key: string; signing_key: string; fallback_key: S["SignedKey"] }
  >
>;
export type RefreshRequest_is_the_token = Expect<Equal<S["RefreshRequest"], { refresh_token: string }>>;

export type SessionTokens_access_token = Expect<Required_<S["SessionTokens"], "access_token", string>>;
export type SessionTokens_refresh_token = Expect<Required_<S["SessionTokens"], "refresh_token", string>>;
export type SessionTokens_access_expires_in = Expect<Required_<S["SessionTokens"], "access_expires_in", number>>;
export type SessionTokens_refresh_expires_in = Expect<Required_<S["SessionTokens"], "refresh_expires_in", number>>;
export type SessionTokens_user_id = Expect<Required_<S["SessionTokens"], "user_id", string>>;
export type SessionTokens_device_id = Expect<Required_<S["SessionTokens"], "device_id", string>>;

export type ConversationList_conversations = Expect<
  Required_<S["ConversationList"], "conversations", S["Conversation"][]>
>;
export type Conversation_id = Expect<Required_<S["Conversation"], "id", string>>;
export type Conversation_kind = Expect<Property<S["Conversation"], "kind", "direct" | "group" | "channel">>;
export type Conversation_member_user_ids = Expect<Required_<S["Conversation"], "member_user_ids", string[]>>;
export type Conversation_title = Expect<Property<S["Conversation"], "title", string>>;
export type CreateConversation_direct = Expect<
  Accepts<S["CreateConversation"], { kind: "direct"; peer_user_id: string }>
>;
export type CreateConversation_group = Expect<
  Accepts<S["CreateConversation"], { kind: "group"; title: string; member_user_ids: string[] }>
>;

export type SendMessage_client_msg_id = Expect<Required_<S["SendMessage"], "client_msg_id", string>>;
export type SendMessage_conversation_id = Expect<Required_<S["SendMessage"], "conversation_id", string>>;
export type SendMessage_envelopes = Expect<Property<S["SendMessage"], "envelopes", S["Envelope"][]>>;
export type SendMessage_kind = Expect<Property<S["SendMessage"], "kind", "message" | "keys" | "group" | "channel">>;
export type SendMessage_group_ciphertext = Expect<Property<S["SendMessage"], "ciphertext", string>>;
export type Envelope_fields = Expect<
  Equal<Pick<S["Envelope"], "device_id" | "msg_type" | "ciphertext">, { device_id: string; msg_type: number; ciphertext: string }>
>;
export type Sent_fields = Expect<
  Equal<
    Pick<S["Sent"], "client_msg_id" | "message_id" | "conversation_id" | "seq" | "sent_at">,
    { client_msg_id: string; message_id: string; conversation_id: string; seq: number; sent_at: number }
  >
>;

export type PendingPage_items = Expect<Required_<S["PendingPage"], "items", S["ServerFrame"][]>>;
export type PendingPage_more = Expect<Required_<S["PendingPage"], "more", boolean>>;
// What pending returns is acknowledged by `cursor`; the frames are told apart by `type`.
type Frame<T extends string> = Extract<S["ServerFrame"], { type: T }>;
export type message_frame = Expect<
  Equal<
    Pick<Frame<"message">, "cursor" | "message_id" | "conversation_id" | "sender_user_id" | "sender_device_id" | "msg_type" | "ciphertext" | "seq" | "sent_at">,
    {
      cursor: number;
      message_id: string;
      conversation_id: string;
      sender_user_id: string;
      sender_device_id: string;
      msg_type: number;
      ciphertext: string;
      seq: number;
      sent_at: number;
    }
  >
>;
export type receipt_frame_cursor = Expect<Required_<Frame<"receipt">, "cursor", number>>;
export type system_frame_cursor = Expect<Required_<Frame<"system">, "cursor", number>>;
export type AckRequest_cursors = Expect<Required_<S["AckRequest"], "cursors", number[]>>;

export type WsTicket_ticket = Expect<Required_<S["WsTicket"], "ticket", string>>;
export type WsTicket_expires_in = Expect<Required_<S["WsTicket"], "expires_in", number>>;
