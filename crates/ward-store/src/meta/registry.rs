//! Repositories, blobs, manifests, tags and referrers.

use std::collections::BTreeMap;

use bytes::Bytes;
use sqlx::Row;
use ward_core::Digest;
use ward_core::manifest::{ParsedManifest, RefTarget};
use ward_core::name::{Reference, RepositoryName, Tag};

use super::resolutions::{ResolutionCache, ResolutionChange};
use super::{
    MetaStore, StoreError, ensure_repository, insert_blob_and_link, now_ms, on_reader, on_writer,
    parse_digest, to_i64, to_u64,
};

/// What a manifest is, without its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestMeta {
    /// Its digest.
    pub digest: Digest,
    /// The media type it is served as.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The manifest it refers to, if any.
    pub subject: Option<Digest>,
}

/// A manifest to store.
pub struct NewManifest<'a> {
    /// Where it is pushed.
    pub repository: &'a RepositoryName,
    /// Digest of `content`, computed by the caller.
    pub digest: Digest,
    /// The parsed view of `content`.
    pub parsed: &'a ParsedManifest,
    /// The exact bytes pushed.
    pub content: &'a [u8],
    /// Tags to point at it in the same transaction.
    pub tags: &'a [Tag],
}

/// Decides, inside the storing transaction, whether a tag is protected from
/// moving; returns a description of the rule that protects it.
pub trait TagProtection: Send + Sync {
    /// The protecting rule for `tag` in `repository`, if any.
    fn protecting_rule(&self, repository: &RepositoryName, tag: &Tag) -> Option<String>;
}

/// No tag is protected.
impl TagProtection for () {
    fn protecting_rule(&self, _: &RepositoryName, _: &Tag) -> Option<String> {
        None
    }
}

/// The result of storing a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutManifestOutcome {
    /// Stored (or already present) and tagged; lists the tags that pointed
    /// elsewhere before, with their previous digest.
    Stored {
        /// Tags moved by this push, and where they pointed before.
        moved: Vec<(Tag, Digest)>,
    },
    /// Nothing stored: these references are not in the repository.
    MissingReferences(Vec<Digest>),
    /// Nothing stored: a descriptor's size is not the size of the content it
    /// names (so a reader trusting the manifest would be misled).
    SizeMismatch {
        /// The content named.
        digest: Digest,
        /// The size the descriptor declares.
        declared: u64,
        /// The size stored.
        stored: u64,
    },
    /// Nothing stored: a protected tag is bound to other content.
    TagProtected {
        /// The tag.
        tag: Tag,
        /// The rule protecting it.
        rule: String,
        /// The digest it is bound to.
        bound_to: Digest,
    },
}

/// The result of deleting a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteManifestOutcome {
    /// Deleted, with every tag that pointed at it.
    Deleted,
    /// The repository has no such manifest.
    Unknown,
    /// Nothing deleted: a protected tag points at it.
    TagProtected {
        /// The tag.
        tag: Tag,
        /// The rule protecting it.
        rule: String,
    },
}

/// One entry of a referrers listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    /// The referring manifest's digest.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
    /// Its artifact type as the referrers API reports it.
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A page of names plus whether more follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryPage {
    /// Names in byte order.
    pub names: Vec<String>,
    /// Whether further names exist after the last one.
    pub more: bool,
}

fn kind_str(t: RefTarget) -> &'static str {
    match t {
        RefTarget::Blob => "blob",
        RefTarget::Manifest => "manifest",
        RefTarget::External => "external",
    }
}

impl MetaStore {
    /// Whether a repository exists.
    pub async fn repository_exists(&self, name: &RepositoryName) -> Result<bool, StoreError> {
        on_reader!(self, |pool| {
            let row = sqlx::query("SELECT 1 FROM repositories WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Repository names after `last`, at most `limit`.
    pub async fn repositories(
        &self,
        last: Option<&str>,
        limit: u32,
    ) -> Result<RepositoryPage, StoreError> {
        let names: Vec<String> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2",
            )
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(page(names, limit))
    }

    /// The size of `digest` if the repository links it.
    pub async fn blob_in_repository(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT b.size FROM repository_blobs rb \
                 JOIN repositories r ON r.id = rb.repository_id \
                 JOIN blobs b ON b.digest = rb.digest \
                 WHERE r.name = $1 AND rb.digest = $2",
            )
            .bind(repository.as_str())
            .bind(digest.to_string())
            .fetch_optional(pool)
            .await?
        });
        size.map(|s| to_u64(s, "blob size")).transpose()
    }

    /// The size of `digest` if any repository has it stored.
    pub async fn blob_anywhere(&self, digest: &Digest) -> Result<Option<u64>, StoreError> {
        let size: Option<i64> = on_reader!(self, |pool| {
            sqlx::query_scalar("SELECT size FROM blobs WHERE digest = $1")
                .bind(digest.to_string())
                .fetch_optional(pool)
                .await?
        });
        size.map(|s| to_u64(s, "blob size")).transpose()
    }

    /// Records that `digest` (of `size` bytes, already in the blob store) is
    /// readable in `repository`.
    pub async fn link_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), StoreError> {
        let size = to_i64(size, "blob size")?;
        let now = now_ms();
        on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let repo_id = ensure_repository!(tx, repository, now);
            insert_blob_and_link!(tx, repo_id, digest, size, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Links `digest` into `to` if `from` links it; returns its size when mounted.
    pub async fn mount_blob(
        &self,
        from: &RepositoryName,
        to: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<u64>, StoreError> {
        let now = now_ms();
        let size: Option<i64> = on_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let size: Option<i64> = sqlx::query_scalar(
                "SELECT b.size FROM repository_blobs rb \
                 JOIN repositories r ON r.id = rb.repository_id \
                 JOIN blobs b ON b.digest = rb.digest \
                 WHERE r.name = $1 AND rb.digest = $2",
            )
            .bind(from.as_str())
            .bind(digest.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(size) = size {
                let repo_id = ensure_repository!(tx, to, now);
                insert_blob_and_link!(tx, repo_id, digest, size, now);
            }
            tx.commit().await?;
            size
        });
        size.map(|s| to_u64(s, "blob size")).transpose()
    }

    /// Removes `repository`'s link to `digest`; returns whether there was one.
    pub async fn unlink_blob(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<bool, StoreError> {
        on_writer!(self, |pool| {
            let done = sqlx::query(
                "DELETE FROM repository_blobs WHERE digest = $2 AND repository_id = \
                 (SELECT id FROM repositories WHERE name = $1)",
            )
            .bind(repository.as_str())
            .bind(digest.to_string())
            .execute(pool)
            .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Stores a manifest and its tags in one transaction, after checking that
    /// everything it references is in the repository and that no protected tag
    /// would move.
    pub async fn put_manifest(
        &self,
        m: NewManifest<'_>,
        protection: &dyn TagProtection,
    ) -> Result<PutManifestOutcome, StoreError> {
        let change = ResolutionChange::begin(self);
        let outcome = self.put_manifest_uncached(m, protection).await;
        change.finish();
        outcome
    }

    async fn put_manifest_uncached(
        &self,
        m: NewManifest<'_>,
        protection: &dyn TagProtection,
    ) -> Result<PutManifestOutcome, StoreError> {
        let now = now_ms();
        let digest = m.digest.to_string();
        let annotations = if m.parsed.annotations.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&m.parsed.annotations)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            )
        };
        let size = i64::try_from(m.content.len()).unwrap_or(i64::MAX);
        on_writer!(self, |pool, pg| {
            let mut tx = pool.begin().await?;
            let repo_id = ensure_repository!(tx, m.repository, now);

            let mut missing = Vec::new();
            let mut mismatch = None;
            for r in &m.parsed.references {
                let sql = match (r.target, pg) {
                    (RefTarget::External, _) => continue,
                    (RefTarget::Blob, false) => {
                        "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
                         WHERE rb.repository_id = $1 AND rb.digest = $2"
                    }
                    // Hold the links until commit so a concurrent delete cannot
                    // leave this manifest pointing at nothing.
                    (RefTarget::Blob, true) => {
                        "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest \
                         WHERE rb.repository_id = $1 AND rb.digest = $2 FOR SHARE OF rb"
                    }
                    (RefTarget::Manifest, false) => {
                        "SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2"
                    }
                    (RefTarget::Manifest, true) => {
                        "SELECT size FROM manifests WHERE repository_id = $1 AND digest = $2 FOR SHARE"
                    }
                };
                let found: Option<i64> = sqlx::query_scalar(sql)
                    .bind(repo_id)
                    .bind(r.digest.to_string())
                    .fetch_optional(&mut *tx)
                    .await?;
                match found {
                    None if !missing.contains(&r.digest) => missing.push(r.digest),
                    Some(stored)
                        if mismatch.is_none() && u64::try_from(stored).ok() != Some(r.size) =>
                    {
                        mismatch = Some(PutManifestOutcome::SizeMismatch {
                            digest: r.digest,
                            declared: r.size,
                            stored: to_u64(stored, "size")?,
                        });
                    }
                    _ => {}
                }
            }
            if !missing.is_empty() {
                return Ok(PutManifestOutcome::MissingReferences(missing));
            }
            if let Some(mismatch) = mismatch {
                return Ok(mismatch);
            }

            sqlx::query(
                "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject, \
                 annotations, size, content, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (repository_id, digest) DO NOTHING",
            )
            .bind(repo_id)
            .bind(&digest)
            .bind(&m.parsed.media_type)
            .bind(m.parsed.artifact_type.as_deref())
            .bind(m.parsed.subject.as_ref().map(|s| s.digest.to_string()))
            .bind(annotations.as_deref())
            .bind(size)
            .bind(m.content)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            for r in &m.parsed.references {
                sqlx::query(
                    "INSERT INTO manifest_references (repository_id, manifest_digest, target_digest, target_kind) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(repo_id)
                .bind(&digest)
                .bind(r.digest.to_string())
                .bind(kind_str(r.target))
                .execute(&mut *tx)
                .await?;
            }

            let mut moved = Vec::new();
            for tag in m.tags {
                let previous: Option<String> = sqlx::query_scalar(
                    "SELECT digest FROM tags WHERE repository_id = $1 AND name = $2",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(previous) = previous.filter(|p| *p != digest) {
                    moved.push((tag.clone(), parse_digest(&previous)?));
                }
                if let Some(rule) = protection.protecting_rule(m.repository, tag) {
                    // First writer wins: concurrent inserts of the same binding
                    // wait on each other, and the losers then read the winner's.
                    sqlx::query(
                        "INSERT INTO tag_bindings (repository, tag, digest, bound_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (repository, tag) DO NOTHING",
                    )
                    .bind(m.repository.as_str())
                    .bind(tag.as_str())
                    .bind(&digest)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let bound: String = sqlx::query_scalar(
                        "SELECT digest FROM tag_bindings WHERE repository = $1 AND tag = $2",
                    )
                    .bind(m.repository.as_str())
                    .bind(tag.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
                    if bound != digest {
                        return Ok(PutManifestOutcome::TagProtected {
                            tag: tag.clone(),
                            rule,
                            bound_to: super::parse_digest(&bound)?,
                        });
                    }
                } else {
                    sqlx::query(
                        "INSERT INTO tag_bindings (repository, tag, digest, bound_at) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, bound_at = excluded.bound_at",
                    )
                    .bind(m.repository.as_str())
                    .bind(tag.as_str())
                    .bind(&digest)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (repository_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
                )
                .bind(repo_id)
                .bind(tag.as_str())
                .bind(&digest)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(PutManifestOutcome::Stored { moved })
        })
    }

    /// The tags of `repository` that point at manifest `digest`.
    pub async fn tags_of(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Vec<String>, StoreError> {
        on_reader!(self, |pool| {
            Ok(sqlx::query_scalar(
                "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id \
                 WHERE r.name = $1 AND t.digest = $2 ORDER BY t.name",
            )
            .bind(repository.as_str())
            .bind(digest.to_string())
            .fetch_all(pool)
            .await?)
        })
    }

    /// Resolves a tag or digest to the manifest it names in `repository`.
    pub async fn resolve_manifest(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>, StoreError> {
        let Some(cache) = &self.resolutions else {
            return self.resolve_manifest_uncached(repository, reference).await;
        };
        let key = ResolutionCache::key(repository.as_str(), &reference.to_string());
        if let Some(meta) = cache.get(&key) {
            return Ok(Some(meta));
        }
        let seen = cache.generation();
        let meta = self
            .resolve_manifest_uncached(repository, reference)
            .await?;
        if let Some(meta) = &meta {
            cache.insert(seen, key, meta.clone());
        }
        Ok(meta)
    }

    async fn resolve_manifest_uncached(
        &self,
        repository: &RepositoryName,
        reference: &Reference,
    ) -> Result<Option<ManifestMeta>, StoreError> {
        let row = on_reader!(self, |pool| {
            let q = match reference {
                Reference::Tag(tag) => sqlx::query(
                    "SELECT m.digest, m.media_type, m.size, m.subject FROM tags t \
                     JOIN repositories r ON r.id = t.repository_id \
                     JOIN manifests m ON m.repository_id = t.repository_id AND m.digest = t.digest \
                     WHERE r.name = $1 AND t.name = $2",
                )
                .bind(repository.as_str())
                .bind(tag.as_str()),
                Reference::Digest(d) => sqlx::query(
                    "SELECT m.digest, m.media_type, m.size, m.subject FROM manifests m \
                     JOIN repositories r ON r.id = m.repository_id \
                     WHERE r.name = $1 AND m.digest = $2",
                )
                .bind(repository.as_str())
                .bind(d.to_string()),
            };
            match q.fetch_optional(pool).await? {
                None => None,
                Some(row) => Some((
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<i64, _>(2)?,
                    row.try_get::<Option<String>, _>(3)?,
                )),
            }
        });
        let Some((digest, media_type, size, subject)) = row else {
            return Ok(None);
        };
        Ok(Some(ManifestMeta {
            digest: parse_digest(&digest)?,
            media_type,
            size: to_u64(size, "manifest size")?,
            subject: subject.as_deref().map(parse_digest).transpose()?,
        }))
    }

    /// Manifests of `repository` that reference `target` (as a layer, config
    /// or child), at most `limit`, in digest order: for gates that serve a blob
    /// or a child manifest only through a verified parent.
    pub async fn referencing_manifests(
        &self,
        repository: &RepositoryName,
        target: &Digest,
        limit: u32,
    ) -> Result<Vec<Digest>, StoreError> {
        let digests: Vec<String> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT mr.manifest_digest FROM manifest_references mr \
                 JOIN repositories r ON r.id = mr.repository_id \
                 WHERE r.name = $1 AND mr.target_digest = $2 \
                 ORDER BY mr.manifest_digest LIMIT $3",
            )
            .bind(repository.as_str())
            .bind(target.to_string())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut out: Vec<Digest> = digests
            .iter()
            .map(|d| parse_digest(d))
            .collect::<Result<_, _>>()?;
        out.dedup();
        Ok(out)
    }

    /// The stored bytes of manifest `digest` in `repository`.
    pub async fn manifest_content(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
    ) -> Result<Option<Bytes>, StoreError> {
        let content: Option<Vec<u8>> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT m.content FROM manifests m JOIN repositories r ON r.id = m.repository_id \
                 WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(repository.as_str())
            .bind(digest.to_string())
            .fetch_optional(pool)
            .await?
        });
        Ok(content.map(Bytes::from))
    }

    /// Deletes manifest `digest` and every tag pointing at it, unless one of
    /// those tags is protected. The tags are read in the deleting transaction,
    /// after the manifest is locked, so a tag added by a concurrent push is
    /// either seen or waits for the delete (and then fails for want of the
    /// manifest): it is never deleted unchecked.
    pub async fn delete_manifest(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        protection: &dyn TagProtection,
    ) -> Result<DeleteManifestOutcome, StoreError> {
        let change = ResolutionChange::begin(self);
        let outcome = self
            .delete_manifest_uncached(repository, digest, protection)
            .await;
        change.finish();
        outcome
    }

    async fn delete_manifest_uncached(
        &self,
        repository: &RepositoryName,
        digest: &Digest,
        protection: &dyn TagProtection,
    ) -> Result<DeleteManifestOutcome, StoreError> {
        let digest = digest.to_string();
        on_writer!(self, |pool, pg| {
            let mut tx = pool.begin().await?;
            // SQLite: the one writer connection already keeps other writes out.
            let lock = if pg {
                "SELECT m.repository_id FROM manifests m JOIN repositories r ON r.id = m.repository_id \
                 WHERE r.name = $1 AND m.digest = $2 FOR UPDATE OF m"
            } else {
                "SELECT m.repository_id FROM manifests m JOIN repositories r ON r.id = m.repository_id \
                 WHERE r.name = $1 AND m.digest = $2"
            };
            let repo_id: Option<i64> = sqlx::query_scalar(lock)
                .bind(repository.as_str())
                .bind(&digest)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(repo_id) = repo_id else {
                return Ok(DeleteManifestOutcome::Unknown);
            };
            let tags: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM tags WHERE repository_id = $1 AND digest = $2",
            )
            .bind(repo_id)
            .bind(&digest)
            .fetch_all(&mut *tx)
            .await?;
            for name in tags {
                let tag = Tag::parse(&name).map_err(|e| {
                    StoreError::Corrupt(format!("tag {name:?} of {repository}: {e}"))
                })?;
                if let Some(rule) = protection.protecting_rule(repository, &tag) {
                    return Ok(DeleteManifestOutcome::TagProtected { tag, rule });
                }
            }
            sqlx::query("DELETE FROM manifests WHERE repository_id = $1 AND digest = $2")
                .bind(repo_id)
                .bind(&digest)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(DeleteManifestOutcome::Deleted)
        })
    }

    /// Removes a tag (the manifest stays); returns whether it existed.
    pub async fn delete_tag(
        &self,
        repository: &RepositoryName,
        tag: &Tag,
    ) -> Result<bool, StoreError> {
        let change = ResolutionChange::begin(self);
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "DELETE FROM tags WHERE name = $2 AND repository_id = \
                 (SELECT id FROM repositories WHERE name = $1)",
            )
            .bind(repository.as_str())
            .bind(tag.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        });
        change.finish();
        Ok(done? > 0)
    }

    /// Tags of `repository` after `last`, at most `limit`; `None` if the repository does not exist.
    pub async fn tags(
        &self,
        repository: &RepositoryName,
        last: Option<&str>,
        limit: u32,
    ) -> Result<Option<RepositoryPage>, StoreError> {
        if !self.repository_exists(repository).await? {
            return Ok(None);
        }
        let names: Vec<String> = on_reader!(self, |pool| {
            sqlx::query_scalar(
                "SELECT t.name FROM tags t JOIN repositories r ON r.id = t.repository_id \
                 WHERE r.name = $1 AND t.name > $2 ORDER BY t.name LIMIT $3",
            )
            .bind(repository.as_str())
            .bind(last.unwrap_or(""))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?
        });
        Ok(Some(page(names, limit)))
    }

    /// Manifests in `repository` whose subject is `subject`, after digest
    /// `after`, at most `limit`, optionally only of `artifact_type`.
    pub async fn referrers(
        &self,
        repository: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        after: Option<&Digest>,
        limit: u32,
    ) -> Result<(Vec<Referrer>, bool), StoreError> {
        let rows = on_reader!(self, |pool| {
            let rows = sqlx::query(
                "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM manifests m \
                 JOIN repositories r ON r.id = m.repository_id \
                 WHERE r.name = $1 AND m.subject = $2 AND ($3 IS NULL OR m.artifact_type = $3) \
                 AND m.digest > $4 ORDER BY m.digest LIMIT $5",
            )
            .bind(repository.as_str())
            .bind(subject.to_string())
            .bind(artifact_type)
            .bind(after.map(ToString::to_string).unwrap_or_default())
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.try_get::<String, _>(0)?,
                    row.try_get::<String, _>(1)?,
                    row.try_get::<i64, _>(2)?,
                    row.try_get::<Option<String>, _>(3)?,
                    row.try_get::<Option<String>, _>(4)?,
                ));
            }
            out
        });
        let more = rows.len() > limit as usize;
        let mut referrers = Vec::with_capacity(rows.len());
        for (digest, media_type, size, artifact_type, annotations) in
            rows.into_iter().take(limit as usize)
        {
            let annotations = match annotations {
                None => BTreeMap::new(),
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("annotations of {digest}: {e}")))?,
            };
            referrers.push(Referrer {
                digest: parse_digest(&digest)?,
                media_type,
                size: to_u64(size, "manifest size")?,
                artifact_type,
                annotations,
            });
        }
        Ok((referrers, more))
    }
}

fn page(mut names: Vec<String>, limit: u32) -> RepositoryPage {
    let more = names.len() > limit as usize;
    names.truncate(limit as usize);
    RepositoryPage { names, more }
}
