//! Responses in HappyFox's shapes: JSON bodies, field errors as a list (creates and
//! lists) or as an object (writes on one ticket), and the front end's plain-text answers.

use axum::body::Body as AxumBody;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::super::validate::FieldErrors;
use super::body::BodyError;

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(AxumBody::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

pub(super) fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

pub(super) fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "Cannot find the requested object"}),
    )
}

pub(super) fn bad_request_list(errors: &FieldErrors) -> Response {
    json_response(StatusCode::BAD_REQUEST, &json!({"error": errors.to_list()}))
}

pub(super) fn bad_request_object(errors: &FieldErrors) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": errors.to_object()}),
    )
}

pub(super) fn request_error(message: &str) -> FieldErrors {
    let mut e = FieldErrors::default();
    e.add("__all__", message);
    e
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = Response::new(AxumBody::from(text));
    *r.status_mut() = status;
    r
}

pub(super) fn unauthorized() -> Response {
    let mut r = Response::new(AxumBody::empty());
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"HappyFox\""),
    );
    r
}

pub(super) fn method_not_allowed() -> Response {
    plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

pub(super) fn body_error(e: BodyError, list_shape: bool) -> Response {
    match e {
        BodyError::TooLarge => json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"error": "Request body too large"}),
        ),
        BodyError::Invalid(msg) => {
            let errors = request_error(&msg);
            if list_shape {
                bad_request_list(&errors)
            } else {
                bad_request_object(&errors)
            }
        }
    }
}
