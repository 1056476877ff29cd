//! OCI image archives built from files of this machine, for a test node that has no registry and
//! no container engine: each image is one uncompressed layer, written deterministically (fixed
//! times and owners), imported into containerd with `ctr images import`.
//!
//! Three images: a static `pause` for pod sandboxes (compiled from `pause.c` with the system C
//! compiler), `busybox` from Debian's `busybox-static`, and the operator's own image from a
//! seccomp-sentinel binary, its shared libraries, and the user, entrypoint, command and
//! `/licenses` that the `Dockerfile` gives the released image.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::{Result, TestenvError, io_context};

/// Name of the sandbox (pause) image the test nodes use.
pub const PAUSE_IMAGE: &str = "localhost/sentinel/pause:1";
/// A small image with a shell and the usual tools (busybox).
pub const BUSYBOX_IMAGE: &str = "localhost/sentinel/busybox:1";
/// The operator's image (`seccomp-sentinel` with the Dockerfile's user, entrypoint and licenses).
pub const OPERATOR_IMAGE: &str = "localhost/seccomp-sentinel:test";

const PAUSE_SOURCE: &str = include_str!("pause.c");

/// One file of an image.
#[derive(Clone, Debug)]
enum Entry {
    File { source: PathBuf, mode: u32 },
    Bytes { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
    Dir { mode: u32 },
}

/// What goes into one image.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    pub name: String,
    entries: Vec<(String, Entry)>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub user: Option<String>,
    pub labels: Vec<(String, String)>,
}

impl ImageSpec {
    pub fn new(name: &str) -> Self {
        ImageSpec {
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Adds a host file at `path` in the image.
    pub fn file(&mut self, path: &str, source: &Path, mode: u32) -> &mut Self {
        self.entries.push((
            path.to_string(),
            Entry::File {
                source: source.to_path_buf(),
                mode,
            },
        ));
        self
    }

    pub fn bytes(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.entries.push((
            path.to_string(),
            Entry::Bytes {
                data: data.to_vec(),
                mode,
            },
        ));
        self
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.entries.push((
            path.to_string(),
            Entry::Symlink {
                target: target.to_string(),
            },
        ));
        self
    }

    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.entries.push((path.to_string(), Entry::Dir { mode }));
        self
    }

    /// Adds a dynamically linked executable and the shared libraries `ldd` names for it, at
    /// their host paths.
    pub fn executable_with_libraries(&mut self, path: &str, source: &Path) -> Result<&mut Self> {
        self.file(path, source, 0o755);
        for library in shared_libraries(source)? {
            let at = library.display().to_string();
            self.file(&at, &library, 0o755);
        }
        Ok(self)
    }

    /// The uncompressed layer: parent directories first, every entry owned by root, time zero.
    fn layer(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        // Every directory (explicit ones with their mode, parents with 0755), parents first.
        let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
        for (path, entry) in &self.entries {
            let mut parent = Path::new(path.trim_start_matches('/')).parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                dirs.entry(p.display().to_string()).or_insert(0o755);
                parent = p.parent();
            }
            if let Entry::Dir { mode } = entry {
                dirs.insert(path.trim_start_matches('/').to_string(), *mode);
            }
        }
        let context = |what: &str| io_context(format!("writing the {} image layer ({what})", self.name));
        for (dir, mode) in &dirs {
            append(&mut builder, dir, tar::EntryType::Directory, *mode, &[], None).map_err(context(dir))?;
        }
        for (path, entry) in &self.entries {
            let path = path.trim_start_matches('/');
            match entry {
                Entry::Dir { .. } => Ok(()),
                Entry::Bytes { data, mode } => {
                    append(&mut builder, path, tar::EntryType::Regular, *mode, data, None)
                }
                Entry::File { source, mode } => {
                    let data =
                        fs::read(source).map_err(io_context(format!("reading {}", source.display())))?;
                    append(&mut builder, path, tar::EntryType::Regular, *mode, &data, None)
                }
                Entry::Symlink { target } => append(
                    &mut builder,
                    path,
                    tar::EntryType::Symlink,
                    0o777,
                    &[],
                    Some(target),
                ),
            }
            .map_err(context(path))?;
        }
        builder.into_inner().map_err(context("finishing"))
    }

    /// Writes the image as an OCI image layout archive; returns the manifest digest.
    pub fn write_archive(&self, out: &Path) -> Result<String> {
        let layer = self.layer()?;
        let layer_digest = digest(&layer);
        let mut config =
            json!({ "Env": ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"], "WorkingDir": "/" });
        if !self.entrypoint.is_empty() {
            config["Entrypoint"] = json!(self.entrypoint);
        }
        if !self.cmd.is_empty() {
            config["Cmd"] = json!(self.cmd);
        }
        if let Some(user) = &self.user {
            config["User"] = json!(user);
        }
        if !self.labels.is_empty() {
            let labels: serde_json::Map<String, serde_json::Value> =
                self.labels.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            config["Labels"] = serde_json::Value::Object(labels);
        }
        let config = serde_json::to_vec(&json!({
            "architecture": go_arch(), "os": "linux", "config": config,
            "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        }))
        .map_err(json_error)?;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len() }],
        }))
        .map_err(json_error)?;
        let tag = self.name.rsplit_once(':').map_or("latest", |(_, tag)| tag);
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest(&manifest), "size": manifest.len(),
                "platform": { "architecture": go_arch(), "os": "linux" },
                "annotations": { "io.containerd.image.name": self.name, "org.opencontainers.image.ref.name": tag },
            }],
        }))
        .map_err(json_error)?;
        let mut archive = tar::Builder::new(
            fs::File::create(out).map_err(io_context(format!("creating {}", out.display())))?,
        );
        archive.mode(tar::HeaderMode::Deterministic);
        let context = || io_context(format!("writing {}", out.display()));
        append(
            &mut archive,
            "oci-layout",
            tar::EntryType::Regular,
            0o644,
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            None,
        )
        .map_err(context())?;
        append(
            &mut archive,
            "index.json",
            tar::EntryType::Regular,
            0o644,
            &index,
            None,
        )
        .map_err(context())?;
        for blob in [&config, &manifest, &layer] {
            let name = format!("blobs/sha256/{}", &digest(blob)["sha256:".len()..]);
            append(&mut archive, &name, tar::EntryType::Regular, 0o644, blob, None).map_err(context())?;
        }
        archive.finish().map_err(context())?;
        Ok(digest(&manifest))
    }
}

fn append<W: std::io::Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: Option<&str>,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_size(data.len() as u64);
    match link {
        Some(target) => builder.append_link(&mut header, path, target),
        None => builder.append_data(&mut header, path, data),
    }
}

fn digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn json_error(e: serde_json::Error) -> TestenvError {
    TestenvError::Io {
        context: "encoding an image document".into(),
        source: std::io::Error::other(e),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The shared libraries of a dynamically linked executable (and its loader), from `ldd`.
fn shared_libraries(executable: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(executable)
        .output()
        .map_err(io_context("running ldd (package libc-bin)"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // A static executable: nothing to add.
        return Ok(Vec::new());
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// What the Dockerfile's final stage gives the released image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleasedImage {
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `COPY <source> /licenses/<name>` lines: (source in the repository, path in the image).
    pub licenses: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
}

/// Reads USER, ENTRYPOINT, CMD, the `/licenses` copies and the LABELs of the Dockerfile's last stage
/// (exec-form JSON arrays; `${VERSION}`-style arguments take their ARG defaults).
pub fn released_image(dockerfile: &str) -> ReleasedImage {
    // Join continuation lines, keep the last stage only.
    let joined = dockerfile.replace("\\\n", " ");
    let last_stage: Vec<&str> = joined
        .lines()
        .rev()
        .take_while(|l| !l.trim_start().starts_with("FROM "))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut args: Vec<(String, String)> = Vec::new();
    let mut image = ReleasedImage {
        user: None,
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        licenses: Vec::new(),
        labels: Vec::new(),
    };
    let exec_form = |rest: &str| serde_json::from_str::<Vec<String>>(rest.trim()).unwrap_or_default();
    for line in last_stage {
        let line = line.trim();
        let (instruction, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match instruction {
            "ARG" => {
                if let Some((k, v)) = rest.trim().split_once('=') {
                    args.push((k.to_string(), v.to_string()));
                }
            }
            "USER" => image.user = Some(rest.trim().to_string()),
            "ENTRYPOINT" => image.entrypoint = exec_form(rest),
            "CMD" => image.cmd = exec_form(rest),
            "COPY" if !rest.contains("--from") => {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                if let [source, target] = parts.as_slice()
                    && target.starts_with("/licenses/")
                {
                    image.licenses.push((source.to_string(), target.to_string()));
                }
            }
            "LABEL" => image.labels.extend(labels(rest, &args)),
            _ => {}
        }
    }
    image
}

/// `key="value" key2="value 2"` pairs of a LABEL instruction.
fn labels(text: &str, args: &[(String, String)]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().to_string();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((v, r)) => (v.to_string(), r),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        let value = args
            .iter()
            .fold(value, |v, (k, default)| v.replace(&format!("${{{k}}}"), default));
        pairs.push((key, value));
        rest = remaining.trim_start();
    }
    pairs
}

/// Builds the three test images into `dir`: the operator's from `operator_binary`. Returns the
/// archive paths.
pub fn build_test_images(dir: &Path, operator_binary: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).map_err(io_context(format!("creating {}", dir.display())))?;
    let mut archives = Vec::new();

    // pause: a static executable from our own source.
    let source = dir.join("pause.c");
    fs::write(&source, PAUSE_SOURCE).map_err(io_context("writing pause.c"))?;
    let pause = dir.join("pause");
    let compiled = Command::new("cc")
        .args(["-Os", "-static", "-o"])
        .arg(&pause)
        .arg(&source)
        .output()
        .map_err(io_context("running cc (package gcc) to build the pause image"))?;
    if !compiled.status.success() {
        return Err(TestenvError::Io {
            context: "compiling pause.c (needs gcc and libc6-dev)".into(),
            source: std::io::Error::other(String::from_utf8_lossy(&compiled.stderr).into_owned()),
        });
    }
    let mut image = ImageSpec::new(PAUSE_IMAGE);
    image.file("/pause", &pause, 0o755).entrypoint = vec!["/pause".into()];
    archives.push(write(dir, "pause", &image)?);

    // busybox, from Debian's busybox-static.
    let busybox = Path::new("/bin/busybox");
    if !busybox.is_file() {
        return Err(TestenvError::NodePrerequisites {
            root: true,
            missing: "busybox-static".into(),
        });
    }
    let applets = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(io_context("listing busybox applets"))?;
    let mut image = ImageSpec::new(BUSYBOX_IMAGE);
    image.file("/bin/busybox", busybox, 0o755);
    for applet in String::from_utf8_lossy(&applets.stdout).lines() {
        if !applet.is_empty() && applet != "busybox" {
            image.symlink(&format!("/bin/{applet}"), "busybox");
        }
    }
    image
        .dir("/tmp", 0o1777)
        .bytes(
            "/etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            0o644,
        )
        .bytes("/etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644)
        .cmd = vec!["sh".into()];
    archives.push(write(dir, "busybox", &image)?);

    // The operator, as the Dockerfile releases it.
    let root = crate::repository_root();
    let dockerfile =
        fs::read_to_string(root.join("Dockerfile")).map_err(io_context("reading the Dockerfile"))?;
    let released = released_image(&dockerfile);
    let mut image = ImageSpec::new(OPERATOR_IMAGE);
    image.executable_with_libraries("/usr/local/bin/seccomp-sentinel", operator_binary)?;
    for (source, target) in &released.licenses {
        image.file(target, &root.join(source), 0o644);
    }
    image.dir("/tmp", 0o1777);
    image.entrypoint = released.entrypoint.clone();
    image.cmd = released.cmd.clone();
    image.user = released.user.clone();
    image.labels = released.labels.clone();
    archives.push(write(dir, "seccomp-sentinel", &image)?);
    Ok(archives)
}

fn write(dir: &Path, file: &str, image: &ImageSpec) -> Result<PathBuf> {
    let out = dir.join(format!("{file}.oci.tar"));
    image.write_archive(&out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_released_image_settings_come_from_the_dockerfile() {
        let dockerfile = fs::read_to_string(crate::repository_root().join("Dockerfile")).expect("Dockerfile");
        let released = released_image(&dockerfile);
        assert_eq!(released.entrypoint, vec!["/usr/local/bin/seccomp-sentinel"]);
        assert_eq!(released.cmd, vec!["run"]);
        assert_eq!(released.user.as_deref(), Some("65532:0"));
        assert_eq!(
            released.licenses,
            vec![("LICENSE".to_string(), "/licenses/LICENSE".to_string())]
        );
        assert!(
            released
                .labels
                .iter()
                .any(|(k, v)| k == "version" && v == "0.1.0"),
            "{:?}",
            released.labels
        );
    }

    #[test]
    fn archives_are_deterministic_and_name_their_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("hello");
        fs::write(&file, "hello").expect("write");
        let mut image = ImageSpec::new("localhost/test/hello:2");
        image
            .file("/usr/share/hello", &file, 0o644)
            .symlink("/hello", "usr/share/hello");
        let a = image.write_archive(&dir.path().join("a.tar")).expect("archive");
        let b = image.write_archive(&dir.path().join("b.tar")).expect("archive");
        assert_eq!(a, b, "same content, same digest");
        let mut archive = tar::Archive::new(fs::File::open(dir.path().join("a.tar")).expect("open"));
        let mut index = None;
        let mut names = Vec::new();
        for entry in archive.entries().expect("entries") {
            let mut entry = entry.expect("entry");
            let name = entry.path().expect("path").display().to_string();
            if name == "index.json" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut entry, &mut text).expect("read");
                index = Some(text);
            }
            names.push(name);
        }
        assert!(names.contains(&"oci-layout".to_string()), "{names:?}");
        let index: serde_json::Value = serde_json::from_str(&index.expect("index.json")).expect("json");
        assert_eq!(
            index["manifests"][0]["annotations"]["io.containerd.image.name"],
            "localhost/test/hello:2"
        );
        assert_eq!(index["manifests"][0]["digest"], a);
    }

    #[test]
    fn layers_hold_parents_before_children() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, "x").expect("write");
        let mut image = ImageSpec::new("localhost/t:1");
        image.file("/a/b/c", &file, 0o600).dir("/a", 0o700);
        let layer = image.layer().expect("layer");
        let mut archive = tar::Archive::new(layer.as_slice());
        let entries: Vec<(String, u32)> = archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.path().expect("path").display().to_string(),
                    e.header().mode().expect("mode"),
                )
            })
            .collect();
        let position = |p: &str| entries.iter().position(|(n, _)| n.trim_end_matches('/') == p);
        assert!(
            position("a") < position("a/b") && position("a/b") < position("a/b/c"),
            "{entries:?}"
        );
        assert!(
            entries
                .iter()
                .any(|(n, m)| n.trim_end_matches('/') == "a" && *m == 0o700),
            "{entries:?}"
        );
    }
}
