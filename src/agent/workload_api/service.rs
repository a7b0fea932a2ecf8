//! The `SpiffeWorkloadAPI` service: one identity (the agent's), per-call attestation by
//! SO_PEERCRED, the security header, and the answers' exact shapes the SPIFFE clients check.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use prost::bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::UdsConnectInfo;
use tonic::{Request, Response, Status};

use super::pb;
use super::pb::spiffe_workload_api_server::SpiffeWorkloadApi;
use crate::agent::appliance::Appliance;
use crate::agent::config::WorkloadApiConfig;
use crate::agent::{Identity, Serving};
use crate::client::ClientError;
use crate::wire::{StatusName, TokenRequest};

type Updates<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What SPIRE and the clients expect when a caller has no identity: the Rust client maps
/// exactly this message to `NoIdentityIssued`.
const NO_IDENTITY: &str = "no identity issued";

/// Workload Endpoint §3: every request carries `workload.spiffe.io: true`, once.
pub fn security_header(req: Request<()>) -> Result<Request<()>, Status> {
    let values: Vec<_> = req
        .metadata()
        .get_all("workload.spiffe.io")
        .iter()
        .collect();
    match values.as_slice() {
        [v] if v.as_bytes() == b"true" => Ok(req),
        _ => Err(Status::invalid_argument(
            "security header missing from request",
        )),
    }
}

pub struct WorkloadApi {
    cfg: WorkloadApiConfig,
    serving: Serving,
    appliance: Arc<Appliance>,
    /// Turns true at shutdown: every stream ends so the server can stop.
    ending: watch::Receiver<bool>,
    /// JWT-SVIDs by audience, handed out again for the first half of their lifetime, so a
    /// caller that asks on every request does not write a ledger record each time.
    minted: std::sync::Mutex<HashMap<String, Minted>>,
}

/// A JWT-SVID already minted, for the certificate `serial` it was minted over.
#[derive(Clone)]
struct Minted {
    serial: String,
    token: String,
    jti: String,
    /// Unix seconds after which a new one is minted (half its lifetime).
    fresh_until: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl WorkloadApi {
    pub fn new(
        cfg: WorkloadApiConfig,
        serving: Serving,
        appliance: Arc<Appliance>,
        ending: watch::Receiver<bool>,
    ) -> WorkloadApi {
        WorkloadApi {
            cfg,
            serving,
            appliance,
            ending,
            minted: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Out-of-band attestation: the kernel's word (SO_PEERCRED) on who connected, logged
    /// per call; only `allowed_uids` (when set) get the identity.
    fn attest<T>(&self, method: &'static str, req: &Request<T>) -> Result<(), Status> {
        let cred = req
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|i| i.peer_cred)
            .ok_or_else(|| Status::unavailable("workload attestation failed"))?;
        let allowed = self
            .cfg
            .allowed_uids
            .as_ref()
            .is_none_or(|uids| uids.contains(&cred.uid()));
        tracing::info!(
            method,
            uid = cred.uid(),
            gid = cred.gid(),
            pid = cred.pid(),
            allowed,
            "Workload API call"
        );
        if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(NO_IDENTITY))
        }
    }

    /// The current identity, or PermissionDenied while the agent serves none.
    fn identity(&self) -> Result<Arc<Identity>, Status> {
        self.serving
            .borrow()
            .clone()
            .ok_or_else(|| Status::permission_denied(NO_IDENTITY))
    }

    /// The current answer at once, then one on every change of identity; ends with
    /// PermissionDenied when the agent stops serving, and at shutdown.
    fn updates<T: Send + 'static>(&self, answer: fn(&Identity) -> T) -> Updates<T> {
        let mut ending = self.ending.clone();
        let stop = async move {
            let _ = ending.wait_for(|e| *e).await;
        };
        let answers = WatchStream::new(self.serving.clone())
            .map(move |identity| match identity {
                Some(id) => Ok(answer(&id)),
                None => Err(Status::permission_denied(NO_IDENTITY)),
            })
            .take_while(Result::is_ok)
            .chain(tokio_stream::once(Err(Status::permission_denied(
                NO_IDENTITY,
            ))));
        Box::pin(futures_util::StreamExt::take_until(answers, stop))
    }
}

impl WorkloadApi {
    /// The JWT-SVID minted for `audience` over the certificate `serial`, while it is in
    /// the first half of its life and the appliance does not call it revoked (a read of
    /// the status API, which writes nothing).
    async fn reusable(&self, audience: &str, serial: &str) -> Option<String> {
        let cached = self
            .minted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(audience)
            .cloned()?;
        if cached.serial != serial || unix_now() >= cached.fresh_until {
            return None;
        }
        let status = self.appliance.token_status(&cached.jti).await.ok()?;
        (status.standing.status == StatusName::Good).then_some(cached.token)
    }

    async fn mint(&self, id: &Identity, audience: String) -> Result<String, Status> {
        let request = TokenRequest {
            audience,
            scopes: self.cfg.jwt_scopes.clone(),
            ttl_secs: self.cfg.jwt_ttl_secs,
        };
        let issued = self
            .appliance
            .token(&id.held, &request)
            .await
            .map_err(upstream)?;
        tracing::info!(jti = %issued.jti, audience = %request.audience, "JWT-SVID minted");
        let now = unix_now();
        let expires = time::OffsetDateTime::parse(
            &issued.expires_at,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| u64::try_from(t.unix_timestamp()).unwrap_or(0))
        .unwrap_or(now);
        self.minted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                request.audience,
                Minted {
                    serial: id.held.serial.clone(),
                    token: issued.token.clone(),
                    jti: issued.jti,
                    fresh_until: now + expires.saturating_sub(now) / 2,
                },
            );
        Ok(issued.token)
    }
}

fn x509_svid(id: &Identity) -> pb::X509svidResponse {
    pb::X509svidResponse {
        svids: vec![pb::X509svid {
            spiffe_id: id.held.spiffe_id.clone().unwrap_or_default(),
            x509_svid: Bytes::from(id.held.chain_der.concat()),
            x509_svid_key: Bytes::from(id.key_der.to_vec()),
            bundle: Bytes::from(id.bundle_der.clone()),
            hint: String::new(),
        }],
        crl: id.crl_der.iter().cloned().map(Bytes::from).collect(),
        federated_bundles: HashMap::new(),
    }
}

fn x509_bundles(id: &Identity) -> pb::X509BundlesResponse {
    pb::X509BundlesResponse {
        crl: id.crl_der.iter().cloned().map(Bytes::from).collect(),
        bundles: HashMap::from([(id.trust_domain(), Bytes::from(id.bundle_der.clone()))]),
    }
}

fn jwt_bundles(id: &Identity) -> pb::JwtBundlesResponse {
    pb::JwtBundlesResponse {
        bundles: HashMap::from([(id.trust_domain(), Bytes::from(id.jwks.clone()))]),
    }
}

/// Maps an appliance refusal to the Workload API's codes: policy says no (4xx) is
/// PermissionDenied with the appliance's reason; anything else is Unavailable (retry).
fn upstream(e: crate::agent::AgentError) -> Status {
    match &e {
        crate::agent::AgentError::Client(ClientError::Refused { status, message })
            if *status < 500 =>
        {
            Status::permission_denied(format!("{NO_IDENTITY}: {message}"))
        }
        _ => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl SpiffeWorkloadApi for WorkloadApi {
    type FetchX509SVIDStream = Updates<pb::X509svidResponse>;
    type FetchX509BundlesStream = Updates<pb::X509BundlesResponse>;
    type FetchJWTBundlesStream = Updates<pb::JwtBundlesResponse>;
    type FetchWITSVIDStream = Updates<pb::WitsvidResponse>;
    type FetchWITBundlesStream = Updates<pb::WitBundlesResponse>;

    async fn fetch_x509svid(
        &self,
        req: Request<pb::X509svidRequest>,
    ) -> Result<Response<Self::FetchX509SVIDStream>, Status> {
        self.attest("FetchX509SVID", &req)?;
        Ok(Response::new(self.updates(x509_svid)))
    }

    async fn fetch_x509_bundles(
        &self,
        req: Request<pb::X509BundlesRequest>,
    ) -> Result<Response<Self::FetchX509BundlesStream>, Status> {
        self.attest("FetchX509Bundles", &req)?;
        Ok(Response::new(self.updates(x509_bundles)))
    }

    async fn fetch_jwt_bundles(
        &self,
        req: Request<pb::JwtBundlesRequest>,
    ) -> Result<Response<Self::FetchJWTBundlesStream>, Status> {
        self.attest("FetchJWTBundles", &req)?;
        Ok(Response::new(self.updates(jwt_bundles)))
    }

    /// A JWT-SVID is a credmint token: minted by the appliance over the agent's mTLS, so
    /// the integration's audience list and scopes apply and its `jti` is in the ledger
    /// (revocable, unlike SPIRE's). The same one is handed out again for half its life.
    async fn fetch_jwtsvid(
        &self,
        req: Request<pb::JwtsvidRequest>,
    ) -> Result<Response<pb::JwtsvidResponse>, Status> {
        self.attest("FetchJWTSVID", &req)?;
        let r = req.into_inner();
        let audience = match r.audience.as_slice() {
            [] => return Err(Status::invalid_argument("audience must be specified")),
            [a] if !a.is_empty() => a.clone(),
            [_] => return Err(Status::invalid_argument("audience must be specified")),
            _ => {
                return Err(Status::invalid_argument(
                    "credmint JWT-SVIDs name exactly one audience: ask once per audience",
                ))
            }
        };
        let id = self.identity()?;
        let spiffe_id = id.held.spiffe_id.clone().unwrap_or_default();
        if !r.spiffe_id.is_empty() && r.spiffe_id != spiffe_id {
            return Err(Status::permission_denied(NO_IDENTITY));
        }
        if id.jwks.is_empty() {
            return Err(Status::unavailable(
                "the appliance's token keys (JWKS) are not known yet",
            ));
        }
        if !has_es256_key(&id.jwks) {
            // Checked before minting: a token nobody may accept would still be a ledger
            // credential.
            return Err(Status::failed_precondition(
                "the appliance signs tokens with EdDSA, which JWT-SVID does not allow: \
                 configure an ecdsa-p256 token key to serve JWT-SVIDs",
            ));
        }
        if self.cfg.jwt_scopes.is_empty() {
            return Err(Status::permission_denied(format!(
                "{NO_IDENTITY}: no JWT-SVID scopes configured ([workload_api] jwt_scopes)"
            )));
        }
        let token = match self.reusable(&audience, &id.held.serial).await {
            Some(token) => token,
            None => self.mint(&id, audience).await?,
        };
        Ok(Response::new(pb::JwtsvidResponse {
            svids: vec![pb::Jwtsvid {
                spiffe_id,
                svid: token,
                hint: String::new(),
            }],
        }))
    }

    /// JWT-SVID validation (signature by a key of the trust domain's JWKS, `aud`, `exp`,
    /// `sub` in the trust domain), then the appliance's revocation status of its `jti`.
    async fn validate_jwtsvid(
        &self,
        req: Request<pb::ValidateJwtsvidRequest>,
    ) -> Result<Response<pb::ValidateJwtsvidResponse>, Status> {
        self.attest("ValidateJWTSVID", &req)?;
        let r = req.into_inner();
        if r.audience.is_empty() {
            return Err(Status::invalid_argument("audience must be specified"));
        }
        if r.svid.is_empty() {
            return Err(Status::invalid_argument("svid must be specified"));
        }
        let id = self.identity()?;
        let claims =
            match super::super::jwt::validate(&r.svid, &r.audience, &id.jwks, &id.trust_domain()) {
                Ok(c) => c,
                Err(super::super::jwt::Invalid::UnknownKey) => {
                    // A key rotated since the last poll: ask for the JWKS once more.
                    let jwks = self.appliance.jwks().await.map_err(upstream)?;
                    super::super::jwt::validate(&r.svid, &r.audience, &jwks, &id.trust_domain())
                        .map_err(|e| Status::invalid_argument(e.to_string()))?
                }
                Err(e) => return Err(Status::invalid_argument(e.to_string())),
            };
        let jti = claims.get("jti").and_then(Value::as_str).ok_or_else(|| {
            Status::invalid_argument("JWT-SVID without a jti: not one of this appliance's tokens")
        })?;
        // Every answer about the token itself is a validation failure (InvalidArgument);
        // only an appliance that cannot answer is Unavailable.
        let standing = self
            .appliance
            .token_status(jti)
            .await
            .map_err(|e| match e {
                crate::agent::AgentError::Answer(why) => Status::invalid_argument(why),
                e if e.refused().is_some_and(|s| s < 500) => {
                    Status::invalid_argument(format!("token {jti}: {e}"))
                }
                e => Status::unavailable(e.to_string()),
            })?;
        if standing.standing.status != StatusName::Good {
            let reason = standing.standing.reason.unwrap_or_default();
            return Err(Status::invalid_argument(
                format!("token {jti} is {:?} {reason}", standing.standing.status)
                    .to_lowercase()
                    .trim()
                    .to_string(),
            ));
        }
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Response::new(pb::ValidateJwtsvidResponse {
            spiffe_id: sub,
            claims: Some(to_struct(claims)),
        }))
    }

    async fn fetch_witsvid(
        &self,
        _req: Request<pb::WitsvidRequest>,
    ) -> Result<Response<Self::FetchWITSVIDStream>, Status> {
        Err(Status::unimplemented(
            "fetching WIT-SVIDs is not implemented",
        ))
    }

    async fn fetch_wit_bundles(
        &self,
        _req: Request<pb::WitBundlesRequest>,
    ) -> Result<Response<Self::FetchWITBundlesStream>, Status> {
        Err(Status::unimplemented(
            "fetching WIT bundles is not implemented",
        ))
    }
}

/// Whether the trust domain's JWKS has an ES256 key (JWT-SVID allows no EdDSA).
fn has_es256_key(jwks: &[u8]) -> bool {
    serde_json::from_slice::<Value>(jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(Value::as_array).cloned())
        .is_some_and(|keys| keys.iter().any(|k| k["alg"] == "ES256"))
}

fn to_value(v: Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(a) => Kind::ListValue(prost_types::ListValue {
            values: a.into_iter().map(to_value).collect(),
        }),
        Value::Object(o) => Kind::StructValue(to_struct(o)),
    };
    prost_types::Value { kind: Some(kind) }
}

fn to_struct(o: serde_json::Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: o.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}
