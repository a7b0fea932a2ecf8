//! Signing and storing checkpoints of the ledger's own tree.

use redb::{Durability, ReadableTable};

use super::read::checkpoint_iter;
use super::{schema, CheckpointIter, Ledger};
use crate::checkpoint::Checkpoint;
use crate::error::StoreError;
use crate::note::{self, Note};
use crate::signer::{verify_ed25519, Signer};

impl Ledger {
    /// Signs a checkpoint of the current size and root with `signer` (key
    /// name = origin), stores it under its size and returns the note text.
    ///
    /// The signer must hold the ledger key in force at the current size (genesis'
    /// key, or the new key of the last ledger-role rotation); its signature is
    /// verified before anything is stored, so a faulty HSM cannot plant a
    /// checkpoint the auditor rejects. Signing the same size again with the
    /// same key returns the stored note unchanged; another key's signature
    /// over the same body is added as an extra signature line. The HSM call
    /// happens outside any write transaction, so appends are not held up.
    pub fn sign_checkpoint(&self, signer: &dyn Signer) -> Result<String, StoreError> {
        let public_key = signer.public_key();
        // Key, size and root from one head snapshot: a rotation committed meanwhile
        // cannot make us sign a size with a key not in force at that size.
        let head = self.head();
        let in_force = head
            .keys
            .as_ref()
            .map(|k| k.ledger_key())
            .unwrap_or_default();
        if public_key != in_force {
            return Err(StoreError::WrongLedgerKey {
                expected: in_force,
                found: public_key,
            });
        }
        let (size, root) = (head.frontier.size(), head.frontier.root());
        let body = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        }
        .to_body();
        let sig = note::sign(&body, &self.origin, signer)?;
        if !verify_ed25519(&public_key, body.as_bytes(), &sig.signature) {
            return Err(StoreError::BadSignature);
        }
        let stored = self.store_checkpoint(size, body, sig);
        if stored.is_ok() {
            self.committed();
        }
        stored.map_err(|e| self.write_failed(e))
    }

    /// Stores `sig` over `body` under `size` (adding it to a note already stored there).
    fn store_checkpoint(
        &self,
        size: u64,
        body: String,
        sig: note::NoteSignature,
    ) -> Result<String, StoreError> {
        let mut txn = self.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        let text = {
            let mut table = txn.open_table(schema::CHECKPOINTS)?;
            let existing = table.get(size)?.map(|v| v.value().to_owned());
            let text = match existing {
                None => Note {
                    text: body,
                    signatures: vec![sig],
                }
                .format(),
                Some(stored) => {
                    let mut n = Note::parse(&stored)?;
                    if n.text != body {
                        return Err(StoreError::Corrupt(format!(
                            "a different checkpoint body is already stored for size {size}"
                        )));
                    }
                    if n.signatures
                        .iter()
                        .any(|s| s.name == sig.name && s.key_id == sig.key_id)
                    {
                        return Ok(stored);
                    }
                    n.signatures.push(sig);
                    n.format()
                }
            };
            table.insert(size, text.as_str())?;
            text
        };
        txn.commit()?;
        Ok(text)
    }

    /// The stored checkpoint with the largest size, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(schema::CHECKPOINTS)?;
        let latest = table.last()?.map(|(_, v)| v.value().to_owned());
        Ok(latest)
    }

    /// The stored checkpoint for exactly `size`, if any.
    pub fn checkpoint_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        let txn = self.begin_read()?;
        let table = txn.open_table(schema::CHECKPOINTS)?;
        Ok(table.get(size)?.map(|v| v.value().to_owned()))
    }

    /// All stored checkpoints `(size, note text)` in size order, streamed.
    pub fn checkpoints(&self) -> Result<CheckpointIter, StoreError> {
        checkpoint_iter(&self.begin_read()?)
    }
}
