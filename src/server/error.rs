//! Barbican's error body `{"code", "title", "description"}`, and the one
//! mapping from the store's [`ErrorKind`] to a status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, ErrorKind};

/// Which resource a request was about: Barbican words its errors per
/// resource (`Provided object does not match schema 'Secret'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Secret,
    Order,
    Container,
    Consumer,
    Acl,
    SecretStore,
    ProjectQuotas,
}

impl Resource {
    fn schema(self) -> &'static str {
        match self {
            Resource::Secret => "Secret",
            Resource::Order => "Order",
            Resource::Container => "Container",
            Resource::Consumer => "Consumer",
            Resource::Acl => "ACL",
            Resource::SecretStore => "SecretStore",
            Resource::ProjectQuotas => "Project Quota",
        }
    }

    /// Barbican's operation name for a creation of this resource, which
    /// its refusals start with (`Secret creation issue seen - …`).
    fn creation(self) -> &'static str {
        match self {
            Resource::Secret => "Secret creation",
            Resource::Order => "Order creation",
            Resource::Container => "Container creation",
            Resource::Consumer => "SecretConsumer creation",
            Resource::Acl => "ACL creation",
            Resource::SecretStore => "Secret store creation",
            Resource::ProjectQuotas => "Project Quotas creation",
        }
    }

    fn not_found(self) -> &'static str {
        match self {
            Resource::Secret | Resource::Consumer | Resource::Acl => "Secret not found.",
            Resource::Order => "Order not found.",
            Resource::Container => "Secrets container not found.",
            Resource::SecretStore => "Not Found. Provided secret store id is invalid.",
            Resource::ProjectQuotas => "Project quotas not found.",
        }
    }

    /// The answer to an id that is not a UUID.
    fn invalid_id(self) -> &'static str {
        match self {
            Resource::Secret | Resource::Consumer | Resource::Acl => {
                "Not Found. Provided secret id is invalid."
            }
            Resource::Order => "Order not found.",
            Resource::Container => "Not Found. Provided container id is invalid.",
            Resource::SecretStore => "Not Found. Provided secret store id is invalid.",
            Resource::ProjectQuotas => "Project quotas not found.",
        }
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub description: Option<String>,
    /// `WWW-Authenticate` for 401s.
    pub challenge: Option<std::borrow::Cow<'static, str>>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    title: &'a str,
    description: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, description: impl Into<String>) -> Self {
        ApiError {
            status,
            description: Some(description.into()),
            challenge: None,
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, description)
    }

    pub fn malformed_json() -> Self {
        ApiError::bad_request("Malformed JSON")
    }

    /// A schema refusal worded as Barbican's JSON-schema validators word it.
    pub fn schema(resource: Resource, message: &str, property: Option<&str>) -> Self {
        let mut d = format!(
            "Provided object does not match schema '{}': {message}",
            resource.schema()
        );
        if let Some(p) = property {
            d.push_str(&format!(". Invalid property: '{p}'"));
        }
        ApiError::bad_request(d)
    }

    pub fn not_found(resource: Resource) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, resource.not_found())
    }

    pub fn invalid_id(resource: Resource) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, resource.invalid_id())
    }

    pub fn unsupported_media(expected: &[&str]) -> Self {
        let list: Vec<String> = expected.iter().map(|t| format!("'{t}'")).collect();
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unexpected content type. Expected content types are: [{}]",
                list.join(", ")
            ),
        )
    }

    pub fn too_large() -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Provided information too large to process",
        )
    }

    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            description: Some("The request you have made requires authentication.".into()),
            challenge: Some("Basic realm=\"keywarden\"".into()),
        }
    }

    /// A 401 whose `WWW-Authenticate` is `challenge` (Keystone's
    /// `Keystone uri="…"`).
    pub fn unauthorized_with(challenge: String) -> Self {
        ApiError {
            challenge: Some(challenge.into()),
            ..ApiError::unauthorized()
        }
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Error while processing the request",
        )
    }

    /// A store error as Barbican answers it.
    pub fn store(resource: Resource, e: &Error) -> Self {
        let ctx = e.context();
        match e.kind() {
            ErrorKind::NotFound
                if ctx.starts_with("Not Found.")
                    || ctx.starts_with("Secret provided")
                    || ctx.starts_with("Secret '")
                    || ctx.starts_with("Secret metadata not found") =>
            {
                ApiError::new(StatusCode::NOT_FOUND, ctx)
            }
            ErrorKind::NotFound => ApiError::not_found(resource),
            ErrorKind::PermissionDenied => ApiError::new(
                StatusCode::FORBIDDEN,
                "Forbidden. Unauthorized to perform this action.",
            ),
            ErrorKind::InvalidInput => ApiError::schema(resource, ctx, e.field()),
            ErrorKind::TooLarge => ApiError::too_large(),
            // The store refuses to drop a secret with consumers as a conflict;
            // Barbican answers 400 with this text, which the client matches.
            ErrorKind::Conflict
                if ctx.starts_with("Secret cannot be deleted as it has consumers") =>
            {
                ApiError::bad_request(
                    "Secret deletion issue seen - Secret cannot be deleted as it has consumers..",
                )
            }
            ErrorKind::Conflict => ApiError::new(StatusCode::CONFLICT, ctx),
            ErrorKind::QuotaExceeded => ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} issue seen - {}.",
                    resource.creation(),
                    crate::store::QUOTA_REACHED_CLIENT_MESSAGE
                ),
            ),
            ErrorKind::Unsupported => ApiError::bad_request(ctx),
            ErrorKind::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The key manager is unavailable; retry later",
            ),
            _ => {
                // Integrity, storage and config failures are the operator's
                // business: logged here, opaque on the wire.
                tracing::error!(error = %e, "request failed");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let mut resp = (
            self.status,
            Json(Body {
                code: self.status.as_u16(),
                title,
                description: self.description.as_deref(),
            }),
        )
            .into_response();
        if let Some(c) = self.challenge
            && let Ok(v) = HeaderValue::from_str(&c)
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
