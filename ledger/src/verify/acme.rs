//! The auditor's view of ACME (FORMAT.md §13.7): External Account Binding keys by kid,
//! accounts by id, and the thumbprint of every key any account was created with or changed
//! to. Decisions are returned as data (rule name, detail); [`super::semantic`] checks the
//! actors and integrations and turns everything into violations.
//!
//! Memory: EAB keys and accounts are few (one per ACME client), so plain maps keyed by id
//! are fine; nothing here grows per certificate.

use std::collections::{HashMap, HashSet};

use crate::event::{
    account_id, AcmeAccountChange, AcmeAccountChanged, AcmeAccountCreated, AcmeEabCreated,
};

/// One broken rule: its stable name (FORMAT.md §13.7) and a human detail.
pub(crate) type Problem = (&'static str, String);

#[derive(Debug)]
struct Eab {
    integration: String,
    expires_at: u64,
    /// An account was bound with it (an EAB key binds one account).
    bound: bool,
}

#[derive(Debug)]
struct Account {
    /// The integration it was created for: it belongs to it for life.
    integration: String,
    /// Deactivation is final.
    deactivated: bool,
}

/// EAB keys, accounts and key thumbprints seen so far.
#[derive(Debug, Default)]
pub(crate) struct AcmeBook {
    eabs: HashMap<String, Eab>,
    accounts: HashMap<String, Account>,
    /// Thumbprints (RFC 7638, as account ids) of every account key, current or former.
    thumbprints: HashSet<String>,
}

/// How an account acting as `acme:<id>` stands: the integration it is bound to (unknown
/// accounts have none) and why it may not act, if it may not.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Acting {
    pub(crate) integration: Option<String>,
    pub(crate) problem: Option<Problem>,
}

impl AcmeBook {
    /// Number of EAB keys created.
    pub(crate) fn eab_keys(&self) -> usize {
        self.eabs.len()
    }

    /// Number of accounts created.
    pub(crate) fn accounts(&self) -> usize {
        self.accounts.len()
    }

    /// Applies an EAB key creation; the first creation of a kid is the one that counts.
    pub(crate) fn eab_created(&mut self, e: &AcmeEabCreated) -> Option<Problem> {
        if self.eabs.contains_key(&e.kid) {
            return Some((
                "acme_eab_duplicate",
                format!("EAB key {:?} created before", e.kid),
            ));
        }
        self.eabs.insert(
            e.kid.clone(),
            Eab {
                integration: e.integration.clone(),
                expires_at: e.expires_at,
                bound: false,
            },
        );
        None
    }

    /// Applies an account creation at time `now` (Unix seconds) and returns every ACME
    /// rule it breaks. The account is recorded even then (the record exists and the
    /// account may act later); a duplicate id keeps its first integration.
    pub(crate) fn account_created(&mut self, now: u64, a: &AcmeAccountCreated) -> Vec<Problem> {
        let mut problems = Vec::new();
        problems.extend(self.bind_eab(now, a));
        let mut key = Vec::new();
        key.extend(jwk_form(&a.jwk));
        let thumbprint = account_id(&a.jwk);
        if a.account != thumbprint {
            key.push(format!(
                "account id {:?} is not the jwk thumbprint {thumbprint:?}",
                a.account
            ));
        }
        if !key.is_empty() {
            problems.push(("acme_account_key", key.join("; ")));
        }
        if self.accounts.contains_key(&a.account) {
            problems.push((
                "acme_account_duplicate",
                format!("account {:?} created before", a.account),
            ));
        } else {
            self.accounts.insert(
                a.account.clone(),
                Account {
                    integration: a.integration.clone(),
                    deactivated: false,
                },
            );
        }
        problems.extend(self.new_key(thumbprint));
        problems
    }

    /// The EAB rules of an account creation; binds the key when it is the right one.
    fn bind_eab(&mut self, now: u64, a: &AcmeAccountCreated) -> Vec<Problem> {
        let kid = &a.eab_kid;
        let Some(eab) = self
            .eabs
            .get_mut(kid)
            .filter(|e| e.integration == a.integration)
        else {
            return vec![(
                "acme_eab_unknown",
                format!(
                    "no EAB key {kid:?} was created for integration {:?}",
                    a.integration
                ),
            )];
        };
        let mut problems = Vec::new();
        if eab.bound {
            problems.push((
                "acme_eab_reused",
                format!("EAB key {kid:?} bound an account before"),
            ));
        }
        eab.bound = true;
        if now > eab.expires_at {
            problems.push((
                "acme_eab_expired",
                format!(
                    "EAB key {kid:?} used at {now}, expired at {}",
                    eab.expires_at
                ),
            ));
        }
        problems
    }

    /// Applies a key change or deactivation and returns every ACME rule it breaks (the
    /// actor is [`super::semantic`]'s business).
    pub(crate) fn account_changed(&mut self, c: &AcmeAccountChanged) -> Vec<Problem> {
        let mut problems = Vec::new();
        match self.accounts.get_mut(&c.account) {
            None => problems.push(unknown(&c.account)),
            Some(acc) if acc.deactivated => problems.push(deactivated(&c.account)),
            Some(acc) => acc.deactivated = c.change == AcmeAccountChange::Deactivated,
        }
        if let AcmeAccountChange::KeyChanged { jwk } = &c.change {
            if let Some(why) = jwk_form(jwk) {
                problems.push(("acme_account_key", why));
            }
            problems.extend(self.new_key(account_id(jwk)));
        }
        problems
    }

    /// `acme_key_duplicate`: a key may serve one account once, so a key rollover to a key
    /// seen before (and a second account on an existing key) is refused.
    fn new_key(&mut self, thumbprint: String) -> Option<Problem> {
        let detail = format!("key {thumbprint:?} is or was the key of an account");
        (!self.thumbprints.insert(thumbprint)).then_some(("acme_key_duplicate", detail))
    }

    /// How the account `id` stands when it acts (issues or revokes a certificate).
    pub(crate) fn acting(&self, id: &str) -> Acting {
        match self.accounts.get(id) {
            None => Acting {
                integration: None,
                problem: Some(unknown(id)),
            },
            Some(acc) => Acting {
                integration: Some(acc.integration.clone()),
                problem: acc.deactivated.then(|| deactivated(id)),
            },
        }
    }
}

fn unknown(id: &str) -> Problem {
    (
        "acme_account_unknown",
        format!("account {id:?} was never created"),
    )
}

fn deactivated(id: &str) -> Problem {
    (
        "acme_account_deactivated",
        format!("account {id:?} was deactivated before"),
    )
}

/// Why `jwk` cannot be an RFC 7638 canonical JWK, by the cheap test the auditor can make
/// without a JSON parser: UTF-8 text of one object, `{` ... `}`.
fn jwk_form(jwk: &[u8]) -> Option<String> {
    match std::str::from_utf8(jwk) {
        Err(_) => Some("the jwk is not UTF-8".into()),
        Ok(s) if !(s.starts_with('{') && s.ends_with('}')) => {
            Some("the jwk is not a JSON object ({...})".into())
        }
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWK_A: &[u8] =
        br#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    const JWK_B: &[u8] =
        br#"{"crv":"Ed25519","kty":"OKP","x":"J3kfBxxDFkLj6Z-6h2sxV1NCZkgvtyhhA2c04HJTdbE"}"#;

    fn eab(kid: &str, integration: &str, expires_at: u64) -> AcmeEabCreated {
        AcmeEabCreated {
            integration: integration.into(),
            kid: kid.into(),
            expires_at,
        }
    }

    fn account(jwk: &[u8], kid: &str, integration: &str) -> AcmeAccountCreated {
        AcmeAccountCreated {
            account: account_id(jwk),
            integration: integration.into(),
            eab_kid: kid.into(),
            jwk: jwk.to_vec(),
        }
    }

    fn change(jwk: &[u8], change: AcmeAccountChange) -> AcmeAccountChanged {
        AcmeAccountChanged {
            account: account_id(jwk),
            change,
        }
    }

    fn rules(problems: impl IntoIterator<Item = Problem>) -> Vec<&'static str> {
        problems.into_iter().map(|(rule, _)| rule).collect()
    }

    #[test]
    fn account_id_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of the RFC 8037 A.2 Ed25519 key.
        assert_eq!(
            account_id(JWK_A),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn an_eab_key_binds_one_account_of_its_integration_until_it_expires() {
        let mut book = AcmeBook::default();
        assert_eq!(book.eab_created(&eab("k1", "billing", 100)), None);
        assert_eq!(
            rules(book.eab_created(&eab("k1", "payroll", 100))),
            ["acme_eab_duplicate"]
        );
        assert_eq!(
            rules(book.account_created(10, &account(JWK_A, "k1", "payroll"))),
            ["acme_eab_unknown"],
            "created for billing, not payroll"
        );
        assert_eq!(
            rules(book.account_created(10, &account(JWK_B, "k1", "billing"))),
            Vec::<&str>::new()
        );
        book.eab_created(&eab("k2", "billing", 100));
        let mut late = account(b"{}", "k2", "billing");
        late.account = account_id(b"{}");
        assert_eq!(
            rules(book.account_created(101, &late)),
            ["acme_eab_expired"]
        );
        let mut again = account(b"{\"x\":1}", "k2", "billing");
        again.account = account_id(b"{\"x\":1}");
        assert_eq!(rules(book.account_created(50, &again)), ["acme_eab_reused"]);
        assert_eq!((book.eab_keys(), book.accounts()), (2, 4));
    }

    #[test]
    fn account_id_and_key_form_are_one_rule() {
        let mut book = AcmeBook::default();
        book.eab_created(&eab("k", "billing", 100));
        let mut bad = account(b"not json", "k", "billing");
        bad.account = "someone-else".into();
        let problems = book.account_created(1, &bad);
        assert_eq!(rules(problems.clone()), ["acme_account_key"]);
        assert!(
            problems[0].1.contains("not a JSON object") && problems[0].1.contains("thumbprint")
        );
        let problems = book.account_changed(&AcmeAccountChanged {
            account: "someone-else".into(),
            change: AcmeAccountChange::KeyChanged {
                jwk: vec![b'{', 0xff, b'}'],
            },
        });
        assert_eq!(rules(problems), ["acme_account_key"]);
    }

    #[test]
    fn keys_serve_one_account_once_and_deactivation_is_final() {
        let mut book = AcmeBook::default();
        book.eab_created(&eab("k1", "billing", 100));
        book.eab_created(&eab("k2", "billing", 100));
        book.account_created(1, &account(JWK_A, "k1", "billing"));
        let key_b = AcmeAccountChange::KeyChanged {
            jwk: JWK_B.to_vec(),
        };
        assert_eq!(
            rules(book.account_changed(&change(JWK_A, key_b.clone()))),
            Vec::<&str>::new()
        );
        // Back to the former key, or a second account on it: both are a reused key.
        let key_a = AcmeAccountChange::KeyChanged {
            jwk: JWK_A.to_vec(),
        };
        assert_eq!(
            rules(book.account_changed(&change(JWK_A, key_a))),
            ["acme_key_duplicate"]
        );
        assert_eq!(
            rules(book.account_created(1, &account(JWK_B, "k2", "billing"))),
            ["acme_key_duplicate"]
        );
        let id = account_id(JWK_A);
        assert_eq!(
            book.acting(&id),
            Acting {
                integration: Some("billing".into()),
                problem: None
            }
        );
        let off = change(JWK_A, AcmeAccountChange::Deactivated);
        assert_eq!(rules(book.account_changed(&off)), Vec::<&str>::new());
        assert_eq!(
            rules(book.account_changed(&off)),
            ["acme_account_deactivated"]
        );
        assert_eq!(
            rules(book.acting(&id).problem),
            ["acme_account_deactivated"]
        );
        assert_eq!(book.acting(&id).integration.as_deref(), Some("billing"));
        assert_eq!(
            rules(book.acting("nobody").problem),
            ["acme_account_unknown"]
        );
        assert_eq!(
            rules(book.account_changed(&AcmeAccountChanged {
                account: "nobody".into(),
                change: AcmeAccountChange::Deactivated,
            })),
            ["acme_account_unknown"]
        );
    }
}
