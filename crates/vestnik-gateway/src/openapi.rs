//! The OpenAPI document, generated from the handlers' annotations.
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Header, RefOr};
use utoipa::{Modify, OpenApi};

/// The OpenAPI document as the handlers' `utoipa` annotations declare it, before the
/// deployment's limits are filled in (see [`openapi_document`]).
#[derive(OpenApi)]
#[openapi(
    info(title = "Vestnik API", description = "End-to-end-encrypted messenger server. Errors always have the shape {\"error\": {\"code\", \"message\"}}."),
    components(schemas(
        vestnik_proto::ClientFrame, vestnik_proto::ServerFrame, vestnik_proto::UserId,
        vestnik_proto::DeviceId, vestnik_proto::ConversationId, vestnik_proto::MessageId,
        vestnik_proto::MediaId, vestnik_proto::ChannelVisibility, vestnik_proto::MediaClass,
        vestnik_proto::PresenceVisibility, vestnik_proto::AssignableRole, vestnik_proto::MemberRole,
        vestnik_proto::ConversationKind, vestnik_proto::Discoverability,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The limits of this deployment that the document states, so a client
/// generated from it knows what this server accepts.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Largest media object in bytes (`media_max_bytes`).
    pub media_max_bytes: i64,
    /// Longest media lifetime in seconds (`media_max_ttl_secs`).
    pub media_max_ttl_secs: i64,
}

impl From<&vestnik_core::Config> for DocumentLimits {
    fn from(c: &vestnik_core::Config) -> Self {
        Self {
            media_max_bytes: c.media_max_bytes,
            media_max_ttl_secs: c.media_max_ttl_secs,
        }
    }
}

/// The document `/openapi.json` serves and `vestnik openapi` prints.
pub fn openapi_document(limits: DocumentLimits) -> serde_json::Value {
    let mut doc = serde_json::to_value(openapi_model(limits)).unwrap_or_default();
    camel_case_links(&mut doc);
    doc
}

/// utoipa 5 writes a Link's `operationId` and `operationRef` in snake case,
/// which no OpenAPI reader understands.
fn camel_case_links(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if let Some(links) = o.get_mut("links").and_then(|l| l.as_object_mut()) {
                for link in links.values_mut().filter_map(|l| l.as_object_mut()) {
                    for (from, to) in [
                        ("operation_id", "operationId"),
                        ("operation_ref", "operationRef"),
                    ] {
                        if let Some(x) = link.remove(from) {
                            if x.as_str().is_some_and(|s| !s.is_empty()) {
                                link.insert(to.into(), x);
                            }
                        }
                    }
                }
            }
            o.values_mut().for_each(camel_case_links);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(camel_case_links),
        _ => {}
    }
}

fn openapi_model(limits: DocumentLimits) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The operations come from the router, so nothing routed is undocumented
    // and nothing documented is unrouted.
    doc.merge(crate::routes::split().1);
    CommonResponses.modify(&mut doc);
    Links.modify(&mut doc);
    if let Some(RefOr::T(Schema::Object(upload))) = doc
        .components
        .as_mut()
        .and_then(|c| c.schemas.get_mut("MediaUploadRequest"))
    {
        for (field, max) in [
            ("size", limits.media_max_bytes),
            ("ttl_secs", limits.media_max_ttl_secs),
        ] {
            if let Some(RefOr::T(Schema::Object(o))) = upload.properties.get_mut(field) {
                o.maximum = Some(max.into());
            }
        }
    }
    doc
}

/// The answers every operation can give besides its own: the document lists
/// them from what the operation takes, the way the edge produces them.
struct CommonResponses;

fn error_response(description: &str, headers: &[(&str, &str)]) -> RefOr<Response> {
    let mut b = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
            "ErrorBody",
        )))),
    );
    for (name, desc) in headers {
        let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
        h.description = Some((*desc).to_owned());
        b = b.header(*name, h);
    }
    RefOr::T(b.build())
}

fn add(op: &mut Operation, status: &str, description: &str, headers: &[(&str, &str)]) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description, headers));
}

/// Operations that depend on a backend beyond the database and answer 503
/// when it is away: the media store and virus scanner, the batch writers.
const MAY_BE_UNAVAILABLE: &[&str] = &["/v1/media", "/v1/messages", "/v1/conversations/{id}/posts"];

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let unavailable = MAY_BE_UNAVAILABLE.iter().any(|p| path.starts_with(p));
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let json_body = op
                    .request_body
                    .as_ref()
                    .is_some_and(|b| b.content.contains_key("application/json"));
                let params = op.parameters.as_ref().is_some_and(|ps| {
                    ps.iter()
                        .any(|p| matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query))
                });
                if json_body || params {
                    add(
                        op,
                        "400",
                        "The request does not parse: `invalid_json`, `invalid_body`, \
                         `invalid_path` or `invalid_query`. A request that matches this \
                         document never gets a 400.",
                        &[],
                    );
                    add(
                        op,
                        "422",
                        "A value the server refuses: outside a limit this document \
                         states, or breaking a rule it cannot state (see the operation's \
                         and fields' descriptions): `invalid_input`, `invalid_device`, \
                         `weak_password`, `invalid_code`, `media_too_large`, …",
                        &[],
                    );
                }
                if json_body {
                    add(
                        op,
                        "413",
                        "`payload_too_large`: the body exceeds the limit.",
                        &[],
                    );
                    add(
                        op,
                        "415",
                        "`unsupported_media_type`: the body must be `application/json`.",
                        &[],
                    );
                }
                if secured {
                    add(
                        op,
                        "401",
                        "`unauthorized`: no, an expired or a revoked access token \
                         (refresh it and retry).",
                        &[(
                            "WWW-Authenticate",
                            "`Bearer realm=\"vestnik\", error=\"invalid_token\"`",
                        )],
                    );
                }
                if unavailable {
                    add(
                        op,
                        "503",
                        "`storage_unavailable`, `scanner_unavailable` or `unavailable`: \
                         a backend is away; retry later.",
                        &[],
                    );
                }
                add(
                    op,
                    "429",
                    "`rate_limited`: too many requests from this address or account.",
                    &[("Retry-After", "seconds to wait")],
                );
            }
        }
    }
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("access token"))
                    .build(),
            ),
        );
    }
}

/// OpenAPI links from the operations that create a resource to those that
/// take its id, so a client (or a stateful fuzzer) can follow them.
struct Links;

/// (producer path, producer method, JSON pointer of the id in its answer,
/// the path prefix of the operations that take it, their parameter).
const LINKS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "/v1/conversations",
        "post",
        "/id",
        "/v1/conversations/{id}",
        "id",
    ),
    ("/v1/media", "post", "/media/id", "/v1/media/{id}", "id"),
    (
        "/v1/conversations/{id}/invites",
        "post",
        "/token",
        "/v1/invites/{token}",
        "token",
    ),
];

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for &(from, method, pointer, prefix, param) in LINKS {
            let mut targets = Vec::new();
            for (path, item) in &openapi.paths.paths {
                if !path.starts_with(prefix) {
                    continue;
                }
                let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
                targets.extend(
                    ops.into_iter()
                        .flatten()
                        .filter_map(|op| op.operation_id.clone()),
                );
            }
            let Some(item) = openapi.paths.paths.get_mut(from) else {
                continue;
            };
            let op = match method {
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(op) = op else { continue };
            for (status, response) in op.responses.responses.iter_mut() {
                let RefOr::T(r) = response else { continue };
                if !status.starts_with('2') {
                    continue;
                }
                if r.content.is_empty() {
                    continue;
                }
                for target in &targets {
                    let link = utoipa::openapi::link::LinkBuilder::new()
                        .operation_id(target.clone())
                        .parameter(param, format!("$response.body#{pointer}"))
                        .build();
                    r.links.insert(target.clone(), RefOr::T(link));
                }
            }
        }
    }
}
