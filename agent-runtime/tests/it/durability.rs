//! An acknowledged turn survives `kill -9`: the real binary is killed while clients keep
//! writing, restarted on the same data directory, and every acknowledged turn is there.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::process::run_agent;
use crate::support::{Reply, Upstream};
use serde_json::{Value, json};

#[tokio::test]
async fn acknowledged_turns_survive_kill_9_during_a_stream_of_writes() {
    let upstream = Upstream::start(vec![]).await;
    let mut agent = run_agent(&upstream, "kill9").await;
    let (client, base) = (agent.client.clone(), agent.base.clone());

    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; 4]));
    let writers: Vec<_> = (0..4)
        .map(|session| {
            let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for turn in 0.. {
                    let body = json!({"messages": [{"role": "user", "content": format!("turn {turn}")}]});
                    let sent = client
                        .post(format!("{base}/v1/chat/completions"))
                        .header("x-session-id", format!("s{session}"))
                        .json(&body)
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    if !response.status().is_success() || response.bytes().await.is_err() {
                        return;
                    }
                    acknowledged.lock().unwrap()[session] = turn + 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.iter().all(|&n| n > 0),
        "every writer got turns acknowledged before the kill: {acknowledged:?}"
    );

    agent.restart().await;
    for (session, &count) in acknowledged.iter().enumerate() {
        let stored: Value =
            client.get(format!("{base}/v1/sessions/s{session}")).send().await.unwrap().json().await.unwrap();
        let turns = stored["turns"].as_u64().unwrap();
        assert!(turns >= count, "session s{session}: {count} turns acknowledged, {turns} survived");
        let last_user = format!("turn {}", count - 1);
        assert!(
            stored["messages"].as_array().unwrap().iter().any(|m| m["content"] == last_user.as_str()),
            "the last acknowledged turn is stored"
        );
    }
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_lets_an_open_stream_finish_then_exits_cleanly() {
    let upstream =
        Upstream::start(vec![Reply::Slow("one two three four five six".into(), Duration::from_millis(150))]).await;
    let mut agent = run_agent(&upstream, "sigterm").await;
    let (client, base) = (agent.client.clone(), agent.base.clone());

    let body = json!({"messages": [{"role": "user", "content": "count"}], "stream": true});
    let response = client
        .post(format!("{base}/v1/chat/completions"))
        .header("x-session-id", "term")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let terminate = Command::new("kill").args(["-TERM", &agent.child.id().to_string()]).status().unwrap();
    assert!(terminate.success());
    let text = response.text().await.expect("the open stream is finished, not cut");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(text.contains("six"), "every word arrived: {text}");
    let status = agent.child.wait().unwrap();
    assert!(status.success(), "a clean exit after SIGTERM: {status}");

    agent.restart().await;
    let stored: Value = client.get(format!("{base}/v1/sessions/term")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["turns"], 1, "the turn finished during shutdown was committed");
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
}

#[tokio::test]
async fn acknowledged_ingests_survive_kill_9() {
    let upstream = Upstream::start(vec![]).await;
    let mut agent = run_agent(&upstream, "ingest-kill9").await;
    let (client, base) = (agent.client.clone(), agent.base.clone());
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let content = format!(
                        "Note {writer}-{n}: the quarterly review for team {n} is on day {} of the month.",
                        n % 28 + 1
                    );
                    let body = json!({"documents": [{"name": format!("note-{writer}-{n}.txt"), "content": content}]});
                    let Ok(response) = client.post(format!("{base}/v1/knowledge/documents")).json(&body).send().await
                    else {
                        return;
                    };
                    if !response.status().is_success() {
                        return;
                    }
                    let Ok(answer) = response.json::<Value>().await else { return };
                    let id = answer["documents"][0]["document"]["id"].as_str().unwrap().to_owned();
                    acknowledged.lock().unwrap().push(id);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty(), "documents were acknowledged before the kill");

    agent.restart().await;
    let listed: Value =
        client.get(format!("{base}/v1/knowledge/documents")).send().await.unwrap().json().await.unwrap();
    let stored: Vec<&str> = listed["documents"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    let lost: Vec<&String> = acknowledged.iter().filter(|id| !stored.contains(&id.as_str())).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged documents lost: {lost:?}", lost.len(), acknowledged.len());
    let found: Value = client
        .post(format!("{base}/v1/knowledge/search"))
        .json(&json!({"query": "quarterly review", "topK": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["results"].as_array().unwrap().len(), 3, "search works after the restart: {found}");
    agent.child.kill().unwrap();
    agent.child.wait().unwrap();
}
