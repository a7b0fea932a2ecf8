//! Read side of the projections: point lookups for the policy and status paths.

use credmint_ledger::event::IntegrationSpec;
use credmint_ledger::governance::Lineage;
use credmint_ledger::Ledger;
use redb::ReadableTable;

use super::apply::ProjectionError;
use super::live::{self, LiveCredential};
use super::schema::{
    ACME_ACCOUNTS, ACME_EAB, ACME_KEYS, ACTIVITY, CERTIFICATES, CLOSED_CHANGES, ENROLLMENTS,
    INTEGRATIONS, INTEGRATION_CERTS, INTEGRATION_META, INTEGRATION_TOKENS, LIVE, MONITORS,
    MONITOR_NAMES, OPERATORS, OPERATOR_LINEAGE, OPERATOR_REQUESTS, PENDING_CHANGES, REVOKED,
    TOKENS,
};

/// Whose certificate a serial is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CredentialKind {
    Workload = 1,
    Operator = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    /// Integration (workload) or operator name.
    pub owner: String,
    pub kind: CredentialKind,
    pub not_after: u64,
    pub issued_index: u64,
    /// Ledger index of the revocation, if revoked.
    pub revoked_index: Option<u64>,
    pub reason: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub integration: String,
    pub expires_at: u64,
    pub issued_index: u64,
    pub revoked_index: Option<u64>,
    pub reason: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRow {
    pub integration: String,
    pub expires_at: u64,
    /// Unix seconds when the token was spent.
    pub used_at: Option<u64>,
}

/// An ACME External Account Binding key (only its id; the key is derived in the HSM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeEabRow {
    pub integration: String,
    pub expires_at: u64,
    /// Ledger index of the account it bound, once used.
    pub bound_index: Option<u64>,
}

/// An ACME account: bound to one integration for life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeAccountRow {
    pub id: String,
    pub integration: String,
    /// Current key, RFC 7638 canonical JWK.
    pub jwk: Vec<u8>,
    pub deactivated: bool,
    pub eab_kid: String,
    pub created_index: u64,
}

/// A monitoring (read-only) token grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRow {
    pub name: String,
    pub token_hash: [u8; 32],
    pub expires_at: u64,
    pub withdrawn: bool,
}

impl MonitorRow {
    /// Whether the token opens the read-only routes at `now` (Unix seconds).
    pub fn live(&self, now: u64) -> bool {
        !self.withdrawn && now < self.expires_at
    }
}

/// Issuance history of one integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// Unix seconds of the latest issuance.
    pub last_issuance: u64,
    /// Credentials issued in total.
    pub issued: u64,
    /// The issuance before the latest, if any.
    pub previous_issuance: Option<u64>,
}

/// An operator request awaiting a second operator (`OperatorRequested` at `index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRequest {
    pub index: u64,
    pub name: String,
    /// Operator name (without `operator:`) that asked.
    pub requester: String,
    pub spki_der: Vec<u8>,
    pub approval_ref: String,
    pub requested_at: u64,
}

/// A change request awaiting approval (`ChangeRequested` at ledger index `index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    pub index: u64,
    pub integration: String,
    /// Actor of the request, e.g. `operator:alice`.
    pub requester: String,
    pub reason: String,
    /// SHA-256 of the spec bytes the request was based on.
    pub base_hash: [u8; 32],
    pub proposed: IntegrationSpec,
    pub requested_at: u64,
}

fn pending_row(
    index: u64,
    v: (&str, &str, &str, &[u8], &[u8], u64),
) -> Result<PendingChange, ProjectionError> {
    Ok(PendingChange {
        index,
        integration: v.0.to_string(),
        requester: v.1.to_string(),
        reason: v.2.to_string(),
        base_hash: v.3.try_into().map_err(storage)?,
        proposed: IntegrationSpec::from_bytes(v.4).map_err(storage)?,
        requested_at: v.5,
    })
}

fn operator_request_row(index: u64, v: (&str, &str, &[u8], &str, u64)) -> OperatorRequest {
    OperatorRequest {
        index,
        name: v.0.to_string(),
        requester: v.1.to_string(),
        spki_der: v.2.to_vec(),
        approval_ref: v.3.to_string(),
        requested_at: v.4,
    }
}

/// `def` in a read transaction, or `None` for a table that was never created (an empty
/// projection).
fn open_or_none<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &redb::ReadTransaction,
    def: redb::TableDefinition<'_, K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, ProjectionError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(storage(e)),
    }
}

fn storage(e: impl std::fmt::Display) -> ProjectionError {
    ProjectionError::Storage(e.to_string())
}

fn nonzero(v: u64) -> Option<u64> {
    (v != 0).then_some(v)
}

/// A consistent read snapshot of the projection tables.
pub struct Registry {
    txn: redb::ReadTransaction,
}

/// Opens `def` in a read transaction, treating a table that was never created as empty.
macro_rules! lookup {
    ($db:expr, $def:expr, $key:expr, |$v:ident| $map:expr) => {{
        match $db.open_table($def) {
            Ok(table) => match table.get($key).map_err(storage)? {
                Some(guard) => {
                    let $v = guard.value();
                    Ok(Some($map))
                }
                None => Ok(None),
            },
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
            Err(e) => Err(storage(e)),
        }
    }};
}

/// All values of `key` in a multimap table (none if the table was never created).
macro_rules! values {
    ($txn:expr, $def:expr, $key:expr, |$v:ident| $map:expr) => {{
        match $txn.open_multimap_table($def) {
            Ok(table) => {
                let mut out = Vec::new();
                for item in table.get($key).map_err(storage)? {
                    let guard = item.map_err(storage)?;
                    let $v = guard.value();
                    out.push($map);
                }
                Ok(out)
            }
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(Vec::new()),
            Err(e) => Err(storage(e)),
        }
    }};
}

impl Registry {
    /// Takes a snapshot of the latest committed projections.
    pub fn open(ledger: &Ledger) -> Result<Registry, ProjectionError> {
        Ok(Registry {
            txn: ledger.begin_read().map_err(storage)?,
        })
    }

    pub fn integration(&self, name: &str) -> Result<Option<IntegrationSpec>, ProjectionError> {
        let bytes: Option<Vec<u8>> = lookup!(self.txn, INTEGRATIONS, name, |v| v.to_vec())?;
        bytes
            .map(|b| IntegrationSpec::from_bytes(&b).map_err(storage))
            .transpose()
    }

    pub fn integrations(&self) -> Result<Vec<IntegrationSpec>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, INTEGRATIONS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, v) = entry.map_err(storage)?;
            out.push(IntegrationSpec::from_bytes(v.value()).map_err(storage)?);
        }
        Ok(out)
    }

    pub fn enrollment(&self, hash: &[u8; 32]) -> Result<Option<EnrollmentRow>, ProjectionError> {
        lookup!(self.txn, ENROLLMENTS, hash, |v| EnrollmentRow {
            integration: v.0.to_string(),
            expires_at: v.1,
            used_at: nonzero(v.2),
        })
    }

    pub fn acme_eab(&self, kid: &str) -> Result<Option<AcmeEabRow>, ProjectionError> {
        lookup!(self.txn, ACME_EAB, kid, |v| AcmeEabRow {
            integration: v.0.to_string(),
            expires_at: v.1,
            bound_index: nonzero(v.2),
        })
    }

    pub fn acme_account(&self, id: &str) -> Result<Option<AcmeAccountRow>, ProjectionError> {
        lookup!(self.txn, ACME_ACCOUNTS, id, |v| AcmeAccountRow {
            id: id.to_string(),
            integration: v.0.to_string(),
            jwk: v.1.to_vec(),
            deactivated: v.2 != 0,
            eab_kid: v.3.to_string(),
            created_index: v.4,
        })
    }

    /// The account that has or had the key with this RFC 7638 thumbprint.
    pub fn acme_account_by_key(&self, thumbprint: &str) -> Result<Option<String>, ProjectionError> {
        lookup!(self.txn, ACME_KEYS, thumbprint, |v| v.to_string())
    }

    /// The grant of the monitoring token whose SHA-256 is `hash`.
    pub fn monitor(&self, hash: &[u8; 32]) -> Result<Option<MonitorRow>, ProjectionError> {
        lookup!(self.txn, MONITORS, hash, |v| MonitorRow {
            name: v.0.to_string(),
            token_hash: *hash,
            expires_at: v.1,
            withdrawn: v.2 != 0,
        })
    }

    /// The not-withdrawn grant named `name` (it may have expired).
    pub fn monitor_named(&self, name: &str) -> Result<Option<MonitorRow>, ProjectionError> {
        let hash: Option<[u8; 32]> = lookup!(self.txn, MONITOR_NAMES, name, |v| *v)?;
        match hash {
            Some(h) => self.monitor(&h),
            None => Ok(None),
        }
    }

    /// Every not-withdrawn grant, by name.
    pub fn monitors(&self) -> Result<Vec<MonitorRow>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, MONITOR_NAMES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (_, hash) = entry.map_err(storage)?;
            if let Some(row) = self.monitor(hash.value())? {
                out.push(row);
            }
        }
        Ok(out)
    }

    pub fn certificate(&self, serial: &[u8]) -> Result<Option<CertRow>, ProjectionError> {
        lookup!(self.txn, CERTIFICATES, serial, |v| CertRow {
            owner: v.0.to_string(),
            kind: if v.1 == CredentialKind::Operator as u8 {
                CredentialKind::Operator
            } else {
                CredentialKind::Workload
            },
            not_after: v.2,
            issued_index: v.3,
            revoked_index: nonzero(v.4),
            reason: v.5,
        })
    }

    pub fn token(&self, jti: &str) -> Result<Option<TokenRow>, ProjectionError> {
        lookup!(self.txn, TOKENS, jti, |v| TokenRow {
            integration: v.0.to_string(),
            expires_at: v.1,
            issued_index: v.2,
            revoked_index: nonzero(v.3),
            reason: v.4,
        })
    }

    /// Issuance history of an integration, if it ever received a credential.
    pub fn activity(&self, integration: &str) -> Result<Option<Activity>, ProjectionError> {
        lookup!(self.txn, ACTIVITY, integration, |v| Activity {
            last_issuance: v.0,
            issued: v.1,
            previous_issuance: nonzero(v.2),
        })
    }

    /// (registered at, last governance change at), unix seconds.
    pub fn integration_times(
        &self,
        integration: &str,
    ) -> Result<Option<(u64, u64)>, ProjectionError> {
        lookup!(self.txn, INTEGRATION_META, integration, |v| v)
    }

    /// Change requests still awaiting a second operator, oldest first.
    pub fn pending_changes(&self) -> Result<Vec<PendingChange>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, PENDING_CHANGES)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            out.push(pending_row(k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn pending_change(&self, index: u64) -> Result<Option<PendingChange>, ProjectionError> {
        let row: Option<Result<PendingChange, ProjectionError>> =
            lookup!(self.txn, PENDING_CHANGES, index, |v| pending_row(index, v))?;
        row.transpose()
    }

    /// For a request that is no longer pending: (1 approved / 2 superseded, closing index).
    pub fn closed_change(&self, index: u64) -> Result<Option<(u8, u64)>, ProjectionError> {
        lookup!(self.txn, CLOSED_CHANGES, index, |v| v)
    }

    /// (certificates, tokens) of `integration` neither revoked nor expired at `now`: one
    /// range scan of the live index, whose length is the answer.
    pub fn live_credentials(
        &self,
        integration: &str,
        now: u64,
    ) -> Result<(usize, usize), ProjectionError> {
        let mut counts = (0, 0);
        for credential in self.live(integration, now, usize::MAX)? {
            match credential {
                LiveCredential::Certificate(_) => counts.0 += 1,
                LiveCredential::Token(_) => counts.1 += 1,
            }
        }
        Ok(counts)
    }

    /// Up to `limit` credentials of `integration` neither revoked nor expired at `now`,
    /// soonest expiry first.
    pub fn live(
        &self,
        integration: &str,
        now: u64,
        limit: usize,
    ) -> Result<Vec<LiveCredential>, ProjectionError> {
        let (from, to) = (live::bound(integration, now), live::end(integration));
        let rows = self.live_range(integration, from, to, limit)?;
        Ok(rows.into_iter().map(|(_, c)| c).collect())
    }

    /// Live credentials of `integration` expiring in `[from, until)`, with their expiry,
    /// soonest first: the console's expiry chart.
    pub fn expiring(
        &self,
        integration: &str,
        from: u64,
        until: u64,
    ) -> Result<Vec<(u64, LiveCredential)>, ProjectionError> {
        let (from, to) = (
            live::bound(integration, from),
            live::bound(integration, until),
        );
        self.live_range(integration, from, to, usize::MAX)
    }

    fn live_range(
        &self,
        integration: &str,
        from: Vec<u8>,
        to: Vec<u8>,
        limit: usize,
    ) -> Result<Vec<(u64, LiveCredential)>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, LIVE)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table
            .range(from.as_slice()..to.as_slice())
            .map_err(storage)?
        {
            if out.len() >= limit {
                break;
            }
            let (k, _) = entry.map_err(storage)?;
            let row = live::parse(k.value(), integration)
                .ok_or_else(|| storage("malformed live-credential key"))?;
            out.push(row);
        }
        Ok(out)
    }

    /// A pending operator request at ledger index `index`.
    pub fn operator_request(&self, index: u64) -> Result<Option<OperatorRequest>, ProjectionError> {
        lookup!(
            self.txn,
            OPERATOR_REQUESTS,
            index,
            |v| operator_request_row(index, v)
        )
    }

    /// Every pending operator request, oldest first.
    pub fn operator_requests(&self) -> Result<Vec<OperatorRequest>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, OPERATOR_REQUESTS)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            out.push(operator_request_row(k.value(), v.value()));
        }
        Ok(out)
    }

    /// How operator `name` was minted; `None` for init's operator (or an unknown name).
    pub fn operator_lineage(&self, name: &str) -> Result<Option<Lineage>, ProjectionError> {
        lookup!(self.txn, OPERATOR_LINEAGE, name, |v| Lineage {
            requested_by: v.0.to_string(),
            approved_by: v.1.to_string(),
        })
    }

    /// Whether an operator of this name was ever issued a certificate.
    pub fn operator_exists(&self, name: &str) -> Result<bool, ProjectionError> {
        Ok(lookup!(self.txn, OPERATORS, name, |v| v)?.is_some())
    }

    /// Serials of every certificate issued to `integration`.
    pub fn integration_serials(&self, integration: &str) -> Result<Vec<Vec<u8>>, ProjectionError> {
        values!(self.txn, INTEGRATION_CERTS, integration, |v| v.to_vec())
    }

    /// jtis of every token issued to `integration`.
    pub fn integration_jtis(&self, integration: &str) -> Result<Vec<String>, ProjectionError> {
        values!(self.txn, INTEGRATION_TOKENS, integration, |v| v.to_string())
    }

    /// Revoked certificates whose validity has not ended by `now`: the CRL's entries.
    pub fn revoked_unexpired(&self, now: u64) -> Result<Vec<RevokedRow>, ProjectionError> {
        let Some(table) = open_or_none(&self.txn, REVOKED)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(storage)? {
            let (k, v) = entry.map_err(storage)?;
            let (revoked_at, reason, not_after) = v.value();
            if not_after >= now {
                out.push(RevokedRow {
                    serial: k.value().to_vec(),
                    revoked_at,
                    reason,
                });
            }
        }
        Ok(out)
    }
}

/// One CRL entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedRow {
    pub serial: Vec<u8>,
    pub revoked_at: u64,
    pub reason: u8,
}
