//! Retention of audit entries, commands, transitions and certificates
//! (issue 24, point 8) on both stores: fill, age (the cutoff is the
//! caller's clock), prune in batches, and check what must stay stays.

use std::collections::BTreeSet;

use super::*;

both_stores!(pruning_deletes_old_rows_in_batches_and_keeps_open_rollouts_and_live_revocations);

const CUTOFF: i64 = 10_000;

fn rollout_row(id: &str) -> RolloutRow {
    RolloutRow {
        id: id.into(),
        target: "14.0.2".into(),
        grace_ms: 1,
        recheck_every_ms: 1,
        max_attempts: 1,
        selector: String::new(),
        auto_update_now: false,
        started_at_ms: 10,
        started_by: "alice".into(),
        cancelled_at_ms: None,
    }
}

fn transition(rollout_id: &str, at_ms: i64) -> TransitionRow {
    TransitionRow {
        rollout_id: rollout_id.into(),
        agent_id: "a".into(),
        at_ms,
        from_state: "pending".into(),
        to_state: "completed".into(),
        cause: String::new(),
    }
}

fn audit_row(at_ms: i64) -> AuditRow {
    AuditRow {
        at_ms,
        actor: "alice".into(),
        role: "admin".into(),
        action: "token.create".into(),
        target: String::new(),
        result: "ok".into(),
    }
}

fn admin_cert(serial: &str, not_after_ms: i64) -> AdminCertRow {
    AdminCertRow {
        serial: serial.into(),
        name: format!("name-{serial}"),
        role: "viewer".into(),
        issued_at_ms: 1,
        not_after_ms,
        issued_by: "alice".into(),
        revoked_at_ms: None,
    }
}

/// Prunes `table` to the end in batches of `limit`; (deleted, batches).
async fn prune_all(store: &Arc<dyn Store>, table: PruneTable, limit: u32) -> (u64, u32) {
    let (mut deleted, mut batches) = (0, 0);
    loop {
        let batch = store.prune(table, CUTOFF, limit).await.unwrap();
        deleted += batch;
        batches += 1;
        assert!(batches < 100, "pruning {table:?} does not finish");
        if batch < u64::from(limit) {
            return (deleted, batches);
        }
    }
}

async fn pruning_deletes_old_rows_in_batches_and_keeps_open_rollouts_and_live_revocations(store: Arc<dyn Store>) {
    enroll(&store, &["a", "b"]).await;
    store.create_rollout(rollout_row("done")).await.unwrap();
    assert!(store.cancel_rollout("done", 30).await.unwrap());
    store.create_rollout(rollout_row("open")).await.unwrap();

    // Transitions: 1,500 old of the finished rollout go; the open rollout's
    // old ones and the finished one's recent ones stay.
    let mut transitions: Vec<TransitionRow> = (0..1500).map(|i| transition("done", 100 + i)).collect();
    transitions.extend((0..5).map(|i| transition("open", 100 + i)));
    transitions.extend((0..3).map(|i| transition("done", 50_000 + i)));
    store.save_members(vec![], transitions).await.unwrap();

    // Commands: old and expired ones of the finished rollout and ad hoc go;
    // the open rollout's, a not yet expired one and one a bundle names stay.
    let mut commands: Vec<CommandRow> = (0..1200)
        .map(|i| {
            let mut old = command(&format!("done-{i}"), "a", 100, 200);
            old.rollout_id = "done".into();
            old.batch_id = "b-done".into();
            old
        })
        .collect();
    commands.extend((0..3).map(|i| {
        let mut open = command(&format!("open-{i}"), "a", 100, 200);
        open.rollout_id = "open".into();
        open
    }));
    let mut unexpired = command("unexpired", "a", 100, 20_000);
    unexpired.rollout_id = String::new();
    unexpired.batch_id = "b-live".into();
    commands.push(unexpired);
    let mut collect = command("collect", "b", 100, 200);
    collect.rollout_id = String::new();
    collect.batch_id = "b-collect".into();
    collect.kind = proto::CommandKind::Collect as i32;
    commands.push(collect);
    store.create_commands(commands).await.unwrap();
    store
        .put_bundle_chunk(bundles::ChunkRecord {
            agent_id: "b".into(),
            command_id: "collect".into(),
            index: 0,
            data: b"log".to_vec(),
            last: true,
            files: 1,
            skipped: 0,
            at_ms: 150,
            max_bytes: 1024,
        })
        .await
        .unwrap()
        .unwrap();

    // Audit: 1,100 old entries go, 2 recent stay.
    for at_ms in (0..1100).map(|i| 100 + i).chain([50_000, 50_001]) {
        store.append_audit(audit_row(at_ms)).await.unwrap();
    }

    // Certificates: b is revoked; its current certificate (valid until
    // 1,000,000) keeps the revocation, its long expired one goes.
    store.record_certificate("b", "b-expired", 5_000).await.unwrap();
    store.revoke_agent("b", 40).await.unwrap();
    store
        .record_admin_certificate(admin_cert("adm-expired", 5_000))
        .await
        .unwrap();
    store
        .record_admin_certificate(admin_cert("adm-live", 1_000_000))
        .await
        .unwrap();
    store.revoke_admin_certificates("name-adm-expired", 50).await.unwrap();
    store.revoke_admin_certificates("name-adm-live", 50).await.unwrap();
    let revoked = store.revoked().await.unwrap().serials;
    assert!(revoked.contains(&"b-expired".to_string()) && revoked.contains(&"adm-expired".to_string()));

    let started = std::time::Instant::now();
    assert_eq!(prune_all(&store, PruneTable::Transitions, 1000).await, (1500, 2));
    assert_eq!(prune_all(&store, PruneTable::Commands, 1000).await, (1200, 2));
    assert_eq!(prune_all(&store, PruneTable::Audit, 1000).await, (1100, 2));
    assert_eq!(prune_all(&store, PruneTable::Certificates, 1000).await, (1, 1));
    assert_eq!(prune_all(&store, PruneTable::AdminCertificates, 1000).await, (1, 1));
    // For the record (no timing is asserted): 3,802 rows in 8 batches.
    eprintln!("pruning: 3,802 rows in {:?}", started.elapsed());

    assert_eq!(store.transitions("open").await.unwrap().len(), 5);
    assert_eq!(store.transitions("done").await.unwrap().len(), 3);
    assert_eq!(store.rollout_commands("open").await.unwrap().len(), 3);
    assert!(store.rollout_commands("done").await.unwrap().is_empty());
    assert_eq!(store.batch_commands("b-live").await.unwrap().len(), 1);
    assert_eq!(store.batch_commands("b-collect").await.unwrap().len(), 1);
    let audit = store.list_audit(10_000).await.unwrap();
    assert_eq!(
        audit.iter().map(|row| row.at_ms).collect::<BTreeSet<_>>(),
        BTreeSet::from([50_000, 50_001])
    );
    let revoked = store.revoked().await.unwrap();
    assert!(revoked.agent_ids.contains(&"b".to_string()));
    assert!(
        revoked.serials.contains(&"serial-b".to_string()),
        "an unexpired revocation stays"
    );
    assert!(
        revoked.serials.contains(&"adm-live".to_string()),
        "an unexpired admin revocation stays"
    );
    assert!(!revoked.serials.contains(&"b-expired".to_string()));
    assert!(!revoked.serials.contains(&"adm-expired".to_string()));
    let admins: Vec<String> = store
        .list_admin_certificates()
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.serial)
        .collect();
    assert_eq!(admins, ["adm-live"]);

    // A second pass finds nothing more.
    for table in PruneTable::ALL {
        assert_eq!(store.prune(table, CUTOFF, 1000).await.unwrap(), 0, "{table:?}");
    }
}
