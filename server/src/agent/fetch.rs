//! Getting the model before (or, for Ollama, through) the runtime, with progress in bytes:
//! Ollama's pull stream, or files from the Hugging Face Hub into the cache layout the runtimes
//! read offline (`models--org--name/snapshots/<commit>/…`, `refs/<revision>`), or one GGUF file.
use super::fetch_http::Http;
use super::state::{size_text, Shared};
use app::models::runtime::RuntimeKind;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

const API_TIMEOUT: Duration = Duration::from_secs(60);

/// Ollama: `POST /api/pull` streamed, progress summed over the layers; then the Modelfile
/// parameters (`HMAS_PARAM_*`) applied with `/api/create`.
pub async fn ollama_pull(http: &Http, base: &str, model: &str, state: &Shared) -> Result<(), String> {
    let body = Bytes::from(json!({"model": model, "stream": true}).to_string());
    let resp = http
        .send(Method::POST, &format!("{base}/api/pull"), Some(body), &[], None, API_TIMEOUT)
        .await
        .map_err(|e| format!("ollama pull: {e}"))?;
    if resp.status() != StatusCode::OK {
        return Err(format!("ollama pull: HTTP {}", resp.status()));
    }
    let mut layers: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let mut success = false;
    // Ollama tells layer by layer, so "downloading" is known only when a layer is not complete.
    let mut downloading = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("ollama pull: {e}"))?;
        let Some(data) = frame.data_ref() else { continue };
        buf.extend_from_slice(data);
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let Ok(v) = serde_json::from_slice::<Value>(&line) else { continue };
            if let Some(e) = v.get("error").and_then(Value::as_str) {
                return Err(format!("ollama pull {model}: {e}"));
            }
            if let (Some(d), Some(total)) = (v.get("digest").and_then(Value::as_str), v["total"].as_u64()) {
                let completed = v["completed"].as_u64().unwrap_or(0);
                if downloading.is_none() && completed < total {
                    downloading = Some(Instant::now());
                    state.note(false, "DownloadingModel", format!("Pulling model {model} through Ollama"));
                }
                layers.insert(d.to_string(), (completed, total));
                let (done, all) = layers.values().fold((0, 0), |(a, b), (c, t)| (a + c, b + t));
                state.progress(done, all);
            }
            if let Some(s) = v.get("status").and_then(Value::as_str) {
                success |= s == "success";
                state.update(|st| st.message = format!("ollama: {s}"));
            }
        }
    }
    if !success {
        return Err(format!("ollama pull {model}: the stream ended before success"));
    }
    state.complete();
    match downloading {
        Some(t) => {
            let (size, secs) = (size_text(state.get().bytes_total), t.elapsed().as_secs_f64());
            state.note(false, "ModelDownloaded", format!("Downloaded model {model} ({size}) in {secs:.1}s"));
        }
        None => state.note(false, "ModelCached", format!("Model {model} found in the cache volume")),
    }
    let parameters: serde_json::Map<String, Value> = std::env::vars()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("HMAS_PARAM_")?.to_ascii_lowercase();
            let value = v
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| v.parse::<f64>().map(Value::from))
                .unwrap_or(Value::from(v));
            Some((name, value))
        })
        .collect();
    if !parameters.is_empty() {
        let body =
            Bytes::from(json!({"model": model, "from": model, "parameters": parameters, "stream": false}).to_string());
        let resp = http.send(Method::POST, &format!("{base}/api/create"), Some(body), &[], None, API_TIMEOUT).await?;
        if !resp.status().is_success() {
            return Err(format!("ollama create {model} with {parameters:?}: HTTP {}", resp.status()));
        }
    }
    Ok(())
}

/// One file of a repository to fetch.
#[derive(Clone, Debug, PartialEq)]
pub struct HubFile {
    pub name: String,
    pub size: u64,
}

/// `repo:QUANT` (GGUF) or `repo`; the revision is always `main`.
pub fn split_gguf(model: &str) -> (&str, Option<&str>) {
    match model.rsplit_once(':') {
        Some((repo, quant)) if repo.contains('/') => (repo, Some(quant)),
        _ => (model, None),
    }
}

/// Which files a runtime needs: for GGUF, the file(s) of the quantisation (split files too,
/// never the vision projector); else configuration, tokenizer and weights, safetensors
/// preferred over pickles, without the exports other tools use.
pub fn choose_files(runtime: RuntimeKind, model: &str, siblings: &[HubFile]) -> Result<Vec<HubFile>, String> {
    if runtime == RuntimeKind::LlamaCpp {
        let quant = split_gguf(model).1.unwrap_or("Q4_K_M").to_ascii_lowercase();
        let ggufs: Vec<&HubFile> = siblings
            .iter()
            .filter(|f| f.name.ends_with(".gguf") && !f.name.to_ascii_lowercase().contains("mmproj"))
            .collect();
        let picked: Vec<HubFile> =
            ggufs.iter().filter(|f| f.name.to_ascii_lowercase().contains(&quant)).map(|f| (*f).clone()).collect();
        if picked.is_empty() {
            let names: Vec<&str> = ggufs.iter().map(|f| f.name.as_str()).collect();
            return Err(format!("no GGUF file for {quant} in the repository (it has: {})", names.join(", ")));
        }
        return Ok(picked);
    }
    let skip_dirs = ["original/", "onnx/", "openvino/", "coreml/", "flax_model", "tf_model"];
    let has_safetensors = siblings.iter().any(|f| f.name.ends_with(".safetensors"));
    let wanted = |n: &str| {
        if skip_dirs.iter().any(|d| n.starts_with(d)) {
            return false;
        }
        let ext = n.rsplit('.').next().unwrap_or("");
        match ext {
            "json" | "model" | "txt" | "tiktoken" | "py" | "jinja" | "safetensors" => true,
            "bin" | "pt" | "pth" => !has_safetensors,
            _ => false,
        }
    };
    let files: Vec<HubFile> = siblings.iter().filter(|f| wanted(&f.name)).cloned().collect();
    if files.is_empty() {
        return Err("the repository has no model files a runtime can load".into());
    }
    Ok(files)
}

/// Where the Hugging Face libraries look: `HF_HUB_CACHE`, `HUGGINGFACE_HUB_CACHE`, `HF_HOME/hub`,
/// else under the model directory.
pub fn hub_cache(model_dir: &Path) -> PathBuf {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()).map(PathBuf::from);
    var("HF_HUB_CACHE")
        .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
        .or_else(|| var("HF_HOME").map(|h| h.join("hub")))
        .unwrap_or_else(|| model_dir.join("huggingface").join("hub"))
}

pub struct HubSource<'a> {
    pub http: &'a Http,
    pub endpoint: &'a str,
    pub token: Option<&'a str>,
}

/// Downloads what the runtime needs; returns the directory holding the files (the snapshot, or
/// the GGUF directory). Complete files already there are not fetched again; partial ones resume.
pub async fn hub_download(
    src: &HubSource<'_>,
    runtime: RuntimeKind,
    model: &str,
    model_dir: &Path,
    state: &Shared,
) -> Result<(PathBuf, Vec<HubFile>), String> {
    let (repo, _) = if runtime == RuntimeKind::LlamaCpp { split_gguf(model) } else { (model, None) };
    let endpoint = src.endpoint.trim_end_matches('/');
    let url = format!("{endpoint}/api/models/{repo}/revision/main?blobs=true");
    let resp = src.http.get(&url, src.token, API_TIMEOUT).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| format!("{url}: {e}"))?.to_bytes();
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            return Err(format!("{repo}: the Hub refused access (HTTP {status}); a gated model needs HF_TOKEN"))
        }
        StatusCode::NOT_FOUND => return Err(format!("{repo}: no such model on {endpoint}")),
        s => return Err(format!("{url}: HTTP {s}")),
    }
    let info: Value = serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
    let sha = info["sha"].as_str().ok_or_else(|| format!("{url}: no commit in the answer"))?.to_string();
    let siblings: Vec<HubFile> = info["siblings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some(HubFile {
                name: s["rfilename"].as_str()?.to_string(),
                size: s["size"].as_u64().or_else(|| s.pointer("/lfs/size").and_then(Value::as_u64)).unwrap_or(0),
            })
        })
        .collect();
    let files = choose_files(runtime, model, &siblings)?;
    for f in &files {
        if f.name.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(format!("{repo}: refusing the file name {:?}", f.name));
        }
    }
    let dir = if runtime == RuntimeKind::LlamaCpp {
        model_dir.join("gguf").join(repo.replace('/', "--"))
    } else {
        let root = hub_cache(model_dir).join(format!("models--{}", repo.replace('/', "--")));
        tokio::fs::create_dir_all(root.join("refs")).await.map_err(|e| format!("{}: {e}", root.display()))?;
        tokio::fs::write(root.join("refs").join("main"), &sha).await.map_err(|e| format!("{}: {e}", root.display()))?;
        root.join("snapshots").join(&sha)
    };
    let total: u64 = files.iter().map(|f| f.size).sum();
    let mut missing = 0u64;
    for f in &files {
        if !complete(&dir.join(&f.name), f.size).await {
            missing += f.size;
        }
    }
    let started = Instant::now();
    if missing == 0 {
        state.note(false, "ModelCached", format!("Model {model} found in the cache volume"));
    } else if missing < total {
        state.note(
            false,
            "DownloadingModel",
            format!("Downloading model {model}: {} of {} left", size_text(missing), size_text(total)),
        );
    } else {
        state.note(false, "DownloadingModel", format!("Downloading model {model} ({})", size_text(total)));
    }
    let mut done_before = 0u64;
    for f in &files {
        let dest = dir.join(&f.name);
        let url = format!("{endpoint}/{repo}/resolve/{sha}/{}", f.name);
        download_file(src, &url, &dest, f.size, |n| state.progress(done_before + n, total)).await?;
        done_before += f.size;
        state.progress(done_before, total);
    }
    if missing > 0 {
        let secs = started.elapsed().as_secs_f64();
        state.note(
            false,
            "ModelDownloaded",
            format!("Downloaded model {model} ({}) in {secs:.1}s", size_text(missing)),
        );
    }
    Ok((dir, files))
}

async fn complete(path: &Path, size: u64) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.len() == size)
}

async fn download_file(
    src: &HubSource<'_>,
    url: &str,
    dest: &Path,
    size: u64,
    on_bytes: impl Fn(u64),
) -> Result<(), String> {
    if complete(dest, size).await {
        on_bytes(size);
        return Ok(());
    }
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let partial = dest.with_extension(format!(
        "{}incomplete",
        dest.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()
    ));
    let have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
    let headers: Vec<(&str, String)> =
        if have > 0 && have < size { vec![("range", format!("bytes={have}-"))] } else { Vec::new() };
    let resp = src.http.send(Method::GET, url, None, &headers, src.token, API_TIMEOUT).await?;
    let resumed = resp.status() == StatusCode::PARTIAL_CONTENT;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(resumed)
        .truncate(!resumed)
        .open(&partial)
        .await
        .map_err(|e| format!("{}: {e}", partial.display()))?;
    let mut written = if resumed { have } else { 0 };
    let mut body = resp.into_body();
    loop {
        let frame = match tokio::time::timeout(API_TIMEOUT, body.frame()).await {
            Err(_) => return Err(format!("{url}: no data for {} s", API_TIMEOUT.as_secs())),
            Ok(None) => break,
            Ok(Some(f)) => f.map_err(|e| format!("{url}: {e}"))?,
        };
        if let Some(data) = frame.data_ref() {
            file.write_all(data).await.map_err(|e| format!("{}: {e}", partial.display()))?;
            written += data.len() as u64;
            on_bytes(written);
        }
    }
    file.flush().await.map_err(|e| format!("{}: {e}", partial.display()))?;
    drop(file);
    if size > 0 && written != size {
        return Err(format!("{url}: got {written} bytes of {size}; the download will resume"));
    }
    tokio::fs::rename(&partial, dest).await.map_err(|e| format!("{}: {e}", dest.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<HubFile> {
        names.iter().map(|n| HubFile { name: n.to_string(), size: 10 }).collect()
    }

    #[test]
    fn picks_what_each_runtime_loads() {
        let repo = files(&[
            "config.json",
            "tokenizer.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "pytorch_model.bin",
            "original/consolidated.00.pth",
            "onnx/model.onnx",
            "README.md",
            ".gitattributes",
        ]);
        let names: Vec<String> =
            choose_files(RuntimeKind::Vllm, "org/m", &repo).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            ["config.json", "tokenizer.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        );
        let pickles = files(&["config.json", "pytorch_model.bin"]);
        assert_eq!(choose_files(RuntimeKind::Tgi, "org/m", &pickles).unwrap().len(), 2);
        let gguf = files(&["m-Q4_K_M.gguf", "m-Q8_0.gguf", "mmproj-m-Q4_K_M.gguf", "README.md"]);
        let picked = choose_files(RuntimeKind::LlamaCpp, "org/m-GGUF:Q4_K_M", &gguf).unwrap();
        assert_eq!(picked, files(&["m-Q4_K_M.gguf"]));
        let err = choose_files(RuntimeKind::LlamaCpp, "org/m-GGUF:Q5_K_S", &gguf).unwrap_err();
        assert!(err.contains("q5_k_s") && err.contains("m-Q8_0.gguf"), "{err}");
        assert!(choose_files(RuntimeKind::Vllm, "org/m", &files(&["README.md"])).is_err());
    }

    #[test]
    fn gguf_names() {
        assert_eq!(split_gguf("bartowski/X-GGUF:Q4_K_M"), ("bartowski/X-GGUF", Some("Q4_K_M")));
        assert_eq!(split_gguf("org/m"), ("org/m", None));
        assert_eq!(split_gguf("llama3.2:1b"), ("llama3.2:1b", None));
    }
}
