//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of this API, derived at compile time
//! from the handlers' `#[utoipa::path]` attributes and the `crate::wire` types, so it
//! cannot drift from what the routes accept and answer. The error answers every route
//! shares (`src/api/error.rs`) are added here by rule rather than repeated on each route.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{IntoParams, Modify, OpenApi};

use super::{
    admin, export, governance, inventory, lifecycle, monitors, ocsp, operators, public, revocation,
    rotation, status, workload,
};
use crate::wire::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "credmint",
        description = "Hardware-backed credential signing appliance for non-human identities: \
            integrations (owned workload identities) receive X.509 certificates and JWTs \
            signed by an HSM-held key; every issuance, revocation and governance change is a \
            record in a hash-chained, checkpointed ledger. Operators authenticate with an \
            operator certificate (mutual TLS), workloads with their own certificate or, once, \
            with an enrollment token. Errors share one JSON shape (`ErrorBody`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        public::healthz, public::checkpoint, public::cosigned_checkpoint, public::ca_pem, public::jwks, document,
        admin::register, inventory::list, admin::show_integration, admin::create_enrollment,
        crate::acme::eab::create_eab,
        crate::acme::account::deactivate_by_operator,
        lifecycle::suspend, lifecycle::resume,
        governance::change, governance::recertify, governance::decommission,
        governance::list_changes, governance::show_change, governance::approve,
        operators::add_operator, operators::list_requests, operators::approve_request,
        workload::enroll, workload::renew, workload::token, workload::whoami,
        revocation::admin_certificate, revocation::admin_token, revocation::admin_integration,
        revocation::self_revoke,
        status::certificate, status::token, status::certificate_receipt, status::token_receipt,
        ocsp::ocsp_post, ocsp::ocsp_get, ocsp::crl, ocsp::crl_of_generation,
        rotation::rotate_key, export::export, inventory::metrics,
        monitors::grant, monitors::list, monitors::withdraw,
    ),
    components(schemas(ErrorBody), responses(workload::CertChain)),
    modifiers(&Security, &SharedErrors),
    tags(
        (name = "public", description = "No authentication"),
        (name = "integrations", description = "Operator: register and manage integrations"),
        (name = "governance", description = "Operator: changes under dual control, recertification, decommissioning"),
        (name = "operators", description = "Operator: further operators under dual control"),
        (name = "workloads", description = "Workload: enrollment, renewal, tokens"),
        (name = "revocation", description = "Revoking certificates and tokens"),
        (name = "status", description = "Public status: JSON with ledger proofs, OCSP, CRL"),
        (name = "keys", description = "Operator: key rotation"),
        (name = "ledger", description = "Operator: audit export and metrics"),
        (name = "monitoring", description = "Operator: read-only monitoring tokens for scrapers"),
    )
)]
pub struct ApiDoc;

/// `{name}` in a route: an integration.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamePath {
    /// Integration name.
    #[param(example = "ci-deploy")]
    #[allow(dead_code)]
    name: String,
}

/// `{index}` in a route: a request recorded in the ledger.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IndexPath {
    /// Ledger index of the request.
    #[param(example = 7)]
    #[allow(dead_code)]
    index: u64,
}

/// The security schemes the routes name.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mtls = |description: &str| SecurityScheme::MutualTls {
            description: Some(description.into()),
            extensions: None,
        };
        components.add_security_scheme(
            "operator_mtls",
            mtls("An operator certificate issued by this appliance's CA (`credmint init` writes the first ones to data_dir/operator-<name>.pem)."),
        );
        components.add_security_scheme(
            "workload_mtls",
            mtls("A workload certificate issued by this appliance to an active integration (from /v1/enroll or /v1/renew)."),
        );
        let mut bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        bearer.description = Some(
            "A one-time enrollment token (`cmt_…`) from POST /v1/admin/integrations/{name}/enrollments.".into(),
        );
        components.add_security_scheme("enrollment_token", SecurityScheme::Http(bearer));
        let mut monitor = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        monitor.description = Some(
            "A read-only monitoring token (`cmm_…`) from POST /v1/admin/monitors: opens GET /metrics, the inventory and the console, nothing else.".into(),
        );
        components.add_security_scheme("monitor_token", SecurityScheme::Http(monitor));
    }
}

/// Adds the error answers that follow from a route's shape, each with the `ErrorBody`
/// schema, unless the route documents that status itself.
struct SharedErrors;

impl SharedErrors {
    fn shared(path: &str, op: &Operation) -> Vec<(&'static str, &'static str)> {
        let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let has_body = op.request_body.is_some();
        let mut out = Vec::new();
        if has_body || path.contains('{') || op.parameters.is_some() {
            out.push((
                "400",
                "Malformed request: bad_request, invalid_field (names `field`) or invalid_csr",
            ));
        }
        if secured {
            out.push(("401", "No valid credential: unauthenticated"));
            out.push((
                "403",
                "Credential of the wrong kind or not allowed: forbidden or denied",
            ));
        }
        if path.contains('{') {
            out.push(("404", "No such object: not_found"));
        }
        if has_body {
            out.push(("413", "Body above server.max_body_bytes: too_large"));
        }
        out.push((
            "503",
            "HSM or ledger unavailable, or at capacity: unavailable, with Retry-After",
        ));
        out.push(("default", "Any other error, in the same shape"));
        out
    }
}

impl Modify for SharedErrors {
    fn modify(&self, doc: &mut Document) {
        let schema: RefOr<utoipa::openapi::schema::Schema> =
            RefOr::Ref(Ref::from_schema_name("ErrorBody"));
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                for (code, description) in SharedErrors::shared(path, op) {
                    if op.responses.responses.contains_key(code) {
                        continue;
                    }
                    let response = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(schema.clone())).build(),
                        )
                        .build();
                    op.responses
                        .responses
                        .insert(code.to_string(), RefOr::T(response));
                }
            }
        }
    }
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_default())
}

/// This document (OpenAPI 3.1).
#[utoipa::path(
    get, path = "/v1/openapi.json", tag = "public",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json", body = Object))
)]
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}
