//! `.tar.gz` bundles as `opa build` writes them: member paths with a leading
//! `/`, `/.manifest`, `/data.json` (the whole data document) and the policy
//! files at their paths. Reading is bounded in size; writing produces a
//! bundle OPA itself loads.

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use super::limits::{Budget, SizeLimits};
use super::signing::{self, KeyConfig, SIGNATURES_FILE};
use super::{
    assemble, data, data_dir, is_bundle_file, Bundle, BundleError, RawFile, UnreadData, Verifier,
};
use crate::engine::Value;

/// Read a bundle from a `.tar.gz` file, sharing data with `previous`
/// ([`super::load_sharing`]).
///
/// Every member counts against `limits` by its declared size before any of
/// it is read, and by what was read after. Two members of one path (after
/// normalization: `/a.rego`, `a.rego` and `./a.rego` are one path) refuse
/// the archive: a signature check and the loader must never be able to
/// take different copies of a file.
pub fn load_tarball(
    path: &Path,
    verifier: Option<&Verifier>,
    previous: Option<&Value>,
    limits: SizeLimits,
) -> Result<Bundle, BundleError> {
    let file = std::fs::File::open(path).map_err(|source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let archive_error = |message: String| BundleError::Archive {
        path: path.to_path_buf(),
        message,
    };
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let entries = archive
        .entries()
        .map_err(|err| archive_error(format!("not a gzip-compressed tar archive: {err}")))?;
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let mut budget = Budget::new(limits);
    for entry in entries {
        let mut entry = entry.map_err(|err| archive_error(format!("corrupt archive: {err}")))?;
        let raw_path = entry
            .path()
            .map_err(|err| archive_error(format!("bad member name: {err}")))?
            .to_string_lossy()
            .into_owned();
        let declared = entry.header().size().unwrap_or(u64::MAX);
        budget
            .take(declared)
            .map_err(|over| BundleError::TooLarge {
                path: path.to_path_buf(),
                message: format!("member {raw_path}: {over}"),
            })?;
        let entry_type = entry.header().entry_type();
        if entry_type.is_dir() {
            continue;
        }
        let member = normalize_member(&raw_path)
            .ok_or_else(|| archive_error(format!("member {raw_path:?} leaves the bundle")))?;
        if !seen.insert(member.clone()) {
            return Err(archive_error(format!(
                "member {member:?} appears more than once; an archive with two members of one path is refused"
            )));
        }
        if !entry_type.is_file() {
            continue;
        }
        let file_name = member.rsplit('/').next().unwrap_or(&member).to_string();
        if !is_bundle_file(&file_name) {
            continue;
        }
        // The declared size was taken from the budget already, and the tar
        // reader yields exactly that many bytes of a member.
        if verifier.is_none() && file_name == "data.json" {
            // No signature to check against its bytes: parse the member as
            // it comes out of the archive, never holding its text whole.
            let shown = path.join(&member);
            let previous = previous.map(|serving| data::value_at(serving, &data_dir(&member)));
            let parsed = data::parse_json_reader(&mut entry, &shown, previous)?;
            files.push(RawFile::unread(member, UnreadData::Parsed(parsed)));
            continue;
        }
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|err| archive_error(format!("{member}: {err}")))?;
        files.push(RawFile::read(member, text));
    }
    assemble(tarball_name(path), path, files, verifier, previous)
}

/// A member path without its leading `/` or `./`; `None` if it climbs out
/// with `..` or is empty.
fn normalize_member(raw: &str) -> Option<String> {
    let parts: Vec<&str> = raw
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

fn tarball_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".to_string());
    name.strip_suffix(".tar.gz")
        .or_else(|| name.strip_suffix(".tgz"))
        .unwrap_or(&name)
        .to_string()
}

/// Write `bundle` as an OPA bundle archive to `out`, signed with
/// `signing_key` when one is given.
pub fn write_tarball(
    bundle: &Bundle,
    out: &Path,
    signing_key: Option<&KeyConfig>,
) -> Result<(), BundleError> {
    let io_error = |source: std::io::Error| BundleError::Io {
        path: out.to_path_buf(),
        source,
    };
    let mut members = std::collections::BTreeMap::new();
    members.insert(
        ".manifest".to_string(),
        serde_json::to_vec(&bundle.manifest).map_err(|e| io_error(e.into()))?,
    );
    members.insert(
        "data.json".to_string(),
        serde_json::to_vec(&bundle.data).map_err(|e| io_error(e.into()))?,
    );
    for policy in &bundle.policies {
        members.insert(policy.path.clone(), policy.source.as_bytes().to_vec());
    }
    for file in &bundle.gatekeeper {
        members.insert(file.path.clone(), file.text.as_bytes().to_vec());
    }
    if let Some(key) = signing_key {
        let signatures = signing::sign(&members, key).map_err(|source| BundleError::Signature {
            bundle: out.to_path_buf(),
            source,
        })?;
        members.insert(SIGNATURES_FILE.to_string(), signatures);
    }
    let file = std::fs::File::create(out).map_err(io_error)?;
    let mut builder = tar::Builder::new(GzEncoder::new(file, flate2::Compression::default()));
    for (name, bytes) in &members {
        append(&mut builder, &format!("/{name}"), bytes).map_err(io_error)?;
    }
    let encoder = builder.into_inner().map_err(io_error)?;
    encoder.finish().map_err(io_error)?;
    Ok(())
}

fn append<W: std::io::Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    // OPA writes member names with a leading "/", which the tar crate's
    // set_path refuses; write the name bytes directly.
    let field = &mut header.as_old_mut().name;
    if name.len() > field.len() {
        return Err(std::io::Error::other(format!(
            "member name too long: {name}"
        )));
    }
    field[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    builder.append(&header, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle;

    #[test]
    fn member_names_are_normalized_and_escapes_refused() {
        assert_eq!(normalize_member("/a/b.rego").as_deref(), Some("a/b.rego"));
        assert_eq!(
            normalize_member("./data.json").as_deref(),
            Some("data.json")
        );
        assert_eq!(normalize_member("/.manifest").as_deref(), Some(".manifest"));
        assert_eq!(normalize_member("../etc/passwd"), None);
        assert_eq!(normalize_member("a/../../x"), None);
        assert_eq!(normalize_member("/"), None);
    }

    #[test]
    fn written_bundle_reads_back_identically() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let original = bundle::load_dir(&root.join("policies")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("policies.tar.gz");
        write_tarball(&original, &out, None).unwrap();
        let read = bundle::load(&out).unwrap();
        assert_eq!(read.name, "policies");
        assert_eq!(read.manifest.revision, original.manifest.revision);
        assert_eq!(read.manifest.roots, original.manifest.roots);
        assert_eq!(read.data, original.data);
        let paths = |b: &Bundle| {
            b.policies
                .iter()
                .map(|p| (p.path.clone(), p.source.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(paths(&read), paths(&original));
    }

    #[test]
    fn gatekeeper_files_travel_in_the_archive() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let original = bundle::load_dir(&root.join("tests/fixtures/gatekeeper/bundle")).unwrap();
        assert_eq!(original.gatekeeper.len(), 19);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("gatekeeper.tar.gz");
        write_tarball(&original, &out, None).unwrap();
        let read = bundle::load(&out).unwrap();
        let files = |b: &Bundle| {
            b.gatekeeper
                .iter()
                .map(|f| (f.path.clone(), f.text.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(files(&read), files(&original));
    }

    /// A `.tar.gz` at `out` holding `members` (names as OPA writes them).
    fn archive(out: &Path, members: &[(&str, &str)]) {
        let file = std::fs::File::create(out).unwrap();
        let mut builder = tar::Builder::new(GzEncoder::new(file, flate2::Compression::fast()));
        for (name, text) in members {
            append(&mut builder, name, text.as_bytes()).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
    }

    #[test]
    fn archive_data_is_parsed_from_the_stream_and_shared_on_reload() {
        use crate::engine::shared_data::reused;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("teams.tar.gz");
        let manifest = r#"{"revision": "1", "roots": ["teams"]}"#;
        let members = |cpu: u32| format!(r#"{{"a": {{"cpu": 4}}, "b": {{"cpu": {cpu}}}}}"#);
        archive(
            &out,
            &[("/.manifest", manifest), ("/teams/data.json", &members(8))],
        );
        let serving = bundle::load(&out).unwrap().data;
        assert_eq!(serving["teams"]["b"]["cpu"], Value::from(8));
        archive(
            &out,
            &[("/.manifest", manifest), ("/teams/data.json", &members(16))],
        );
        let next = bundle::load_sharing(&out, None, Some(&serving), SizeLimits::default())
            .unwrap()
            .data;
        assert_eq!(next["teams"]["b"]["cpu"], Value::from(16));
        assert!(reused(&next["teams"]["a"], &serving["teams"]["a"]));
        assert!(!reused(&next["teams"]["b"], &serving["teams"]["b"]));
    }

    #[test]
    fn malformed_archive_data_names_the_member_line_and_column() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("bad.tar.gz");
        archive(&out, &[("/x/data.json", "{\n  \"a\": tru\n}")]);
        let err = bundle::load(&out).unwrap_err();
        assert!(matches!(err, BundleError::Data { .. }), "{err}");
        let location = err.location().expect("a location");
        assert!(
            location.file.ends_with("bad.tar.gz/x/data.json"),
            "{location:?}"
        );
        assert!(location.row >= 2, "{location:?}");
    }

    #[test]
    fn a_member_declared_larger_than_the_limit_is_refused_unread() {
        // A header that claims 1 GiB with no data behind it: the limit is
        // checked against the header before anything is read, so the
        // missing bytes are never asked for.
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("claims.tar.gz");
        let file = std::fs::File::create(&out).unwrap();
        let mut encoder = GzEncoder::new(file, flate2::Compression::fast());
        let mut header = tar::Header::new_gnu();
        header.set_size(1 << 30);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_path("data.json").unwrap();
        header.set_cksum();
        std::io::Write::write_all(&mut encoder, header.as_bytes()).unwrap();
        encoder.finish().unwrap();
        let err = bundle::load(&out).unwrap_err();
        assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("max_file_bytes"), "{err}");
    }

    #[test]
    fn two_members_of_one_path_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("twice.tar.gz");
        archive(
            &out,
            &[
                ("/a/x.rego", "package a\nx := 1\n"),
                ("a/x.rego", "package a\nx := 2\n"),
            ],
        );
        let err = bundle::load(&out).unwrap_err();
        assert!(err.to_string().contains("more than once"), "{err}");
    }

    #[test]
    fn garbage_is_a_clear_archive_error() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("junk.tar.gz");
        std::fs::write(&out, b"this is not gzip").unwrap();
        let err = bundle::load(&out).unwrap_err();
        assert!(matches!(err, BundleError::Archive { .. }), "{err}");
        assert!(err.to_string().contains("junk.tar.gz"), "{err}");
    }

    #[test]
    fn truncated_archive_is_refused() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let original = bundle::load_dir(&root.join("policies")).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("p.tar.gz");
        write_tarball(&original, &out, None).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
        assert!(bundle::load(&out).is_err());
    }

    #[test]
    fn an_archive_cut_inside_its_data_is_a_read_error_not_a_data_error() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("cut.tar.gz");
        // Data that does not compress, so that cutting the archive in half
        // cuts inside the data member.
        let noise: String = (0..20_000u32)
            .map(|i| format!("{:08x}", i.wrapping_mul(2_654_435_761)))
            .collect();
        let text = format!(r#"{{"noise": "{noise}"}}"#);
        archive(&out, &[("/data.json", &text)]);
        let bytes = std::fs::read(&out).unwrap();
        std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
        let err = bundle::load(&out).unwrap_err();
        assert!(matches!(err, BundleError::Io { .. }), "{err}");
        assert!(err.to_string().contains("cut.tar.gz"), "{err}");
    }
}
