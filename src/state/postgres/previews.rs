//! Each media's image URL from X's latest read, beside its record
//! (`xmeta_previews`, schema version 4): a review's cache, outside the
//! records, the history and the serial. A row goes with its record
//! (`ON DELETE CASCADE`), so a forgotten or replaced media has none.

use std::collections::BTreeMap;

use tokio_postgres::GenericClient;

use crate::model::MediaId;

/// Only media the state records get a URL (the join): a preview never
/// outlives, or precedes, its record.
const PUT: &str = "INSERT INTO xmeta_previews (workspace, media_id, url) \
     SELECT $1, r.media_id, p.url FROM unnest($2::text[], $3::text[]) AS p(id, url) \
     JOIN xmeta_records r ON r.workspace = $1 AND r.media_id = p.id \
     ON CONFLICT (workspace, media_id) DO UPDATE SET url = excluded.url";

const GET: &str =
    "SELECT media_id, url FROM xmeta_previews WHERE workspace = $1 AND media_id = ANY($2)";

pub async fn put(
    client: &impl GenericClient,
    workspace: &str,
    previews: &BTreeMap<MediaId, String>,
) -> Result<u64, tokio_postgres::Error> {
    let (ids, urls): (Vec<String>, Vec<&str>) = previews
        .iter()
        .map(|(id, url)| (id.to_string(), url.as_str()))
        .unzip();
    client.execute(PUT, &[&workspace, &ids, &urls]).await
}

/// A role that may not read the table (granted before it existed) reads
/// no images rather than failing the plan; the check runs first because
/// a failed statement would end the reader's snapshot transaction.
pub async fn get(
    client: &impl GenericClient,
    workspace: &str,
    ids: &[MediaId],
) -> Result<BTreeMap<MediaId, String>, tokio_postgres::Error> {
    let readable: bool = client
        .query_one(
            "SELECT has_table_privilege('xmeta_previews', 'SELECT')",
            &[],
        )
        .await?
        .get(0);
    if !readable {
        tracing::warn!(
            "this role may not read xmeta_previews (grant SELECT on it): the review shows no images"
        );
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for part in ids.chunks(10_000) {
        let keys: Vec<String> = part.iter().map(ToString::to_string).collect();
        for row in client.query(GET, &[&workspace, &keys]).await? {
            // A row whose ID does not parse (a forgery) shows nothing.
            if let Some(id) = MediaId::parse(row.get(0)) {
                out.insert(id, row.get(1));
            }
        }
    }
    Ok(out)
}
