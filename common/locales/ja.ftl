# rollcall のメッセージ(日本語)。製品の設定名は製品自身の日本語名を使う。

## ランブックの手順
step-1 = ライセンスの有効期限の確認
step-2 = 「アップデート設定権限」の再確認
step-3 = エージェントの[アップデート元]設定の再確認
step-4 = デジタル署名のチェックで使用する証明書の確認
step-5 = 一般的な接続問題の確認
step-6 = システム要件の確認
step-7 = 上書きインストールによる切り分け
step-8 = 事象の原因特定のための情報取得
step-none = 該当する手順なし

## 原因コード
cause-license = ライセンスの期限切れ
cause-update_permission = 「アップデート設定権限」が「すべてのコンポーネント」ではない
cause-update_source = 「アップデート元」が想定された設定ではない
cause-update_agent_program = このアップデートエージェントで「セキュリティエージェントプログラムとHotFix」が有効になっていないため、クライアントがアップグレードできない
cause-update_agent = アップデートエージェントがアップデートを妨げている
cause-update_agent_conflict = 複数のエージェントが自分のアップデートエージェントだと申告しており、どれが配信元か分からない
cause-certificates = デジタル署名の証明書が不足または期限切れ
cause-connectivity = サーバまたはアップデート元に接続できない
cause-offline = プローブがオフライン
cause-system_requirements = システム要件を満たしていない
cause-unknown = 手順1〜6で原因が見つからない
cause-awaiting_recheck = すべてのチェックは成功しているが、最後の再確認より前の情報のため、新しい報告を待っている
cause-no_data = プローブから手順のチェック結果が報告されていない
cause-probe_error = プローブでチェックを実行できなかった(手順上の原因ではない)

## 対処方法(原因別)
remediation-license = 「Web管理コンソール」でライセンスの有効期限を確認し、期限が切れている場合は更新してください。期限切れの間はすべてのエージェントでアップグレードできません。
remediation-update_permission = 「Web管理コンソール」で「アップデート設定権限」が「パターンファイル」または「パターンファイル、エンジン、ドライバ」になっている場合は「すべてのコンポーネント」に変更し、「Web管理コンソール」から対象のエージェントに手動アップデート通知を送ってアップグレードされるか確認してください。
remediation-update_source = { -console-update-source }で、エージェントの「アップデート元」が「標準アップデート元」か「ユーザ指定アップデート元」かを確認し、お客様の運用で想定された設定にしてください。
remediation-update_agent_program = { -console-update-agent-settings }で、このアップデートエージェントの「セキュリティエージェントプログラムとHotFix」を有効にしてください。その後、アップデートエージェントが新しいプログラムを取得してから再確認してください。それまで、このアップデートエージェントから取得するクライアントはすべてアップグレードできません。
remediation-update_agent = 先にアップデートエージェントを直してください。{ -console-update-agent-settings }で「セキュリティエージェントプログラムとHotFix」を有効にし、オンラインであることと、アップデートエージェント自体のアップグレード完了を確認してください。クライアントはその後に続きます。
remediation-update_agent_conflict = このクライアントの取得先アドレスについて、複数の rollcall エージェントが自分がアップデートエージェントだと申告しています(上記参照)。Webコンソールのアップデートエージェント一覧で本物を確認し、それ以外のエージェントの agent.toml または製品設定(役割とアップデートエージェントのアドレス)を直すか、失効させてください。そのアドレスを申告するエージェントが1台になるまで、rollcall はどのアップデートエージェントにも原因を帰しません。
remediation-certificates = 不足しているデジタル署名のルート証明書・中間証明書をエージェント(およびサーバ)にインストールするか、期限切れの証明書を置き換えてください。
remediation-connectivity = 常駐アイコンがオンラインの場合も、一般的な接続問題の切り分けを行ってください。サーバとアップデート元の名前解決、TCP、TLS の到達性を確認します。
remediation-offline = オフライン判定の時間内にプローブから報告がありません。端末の電源とネットワーク接続、rollcall-agent が動作しているかを確認してください。
remediation-system_requirements = セキュリティエージェントのシステム要件(対応 OS とバージョン、新しいコード署名に必要な OS の更新、空きディスク、メモリ)を満たすようにするか、対象から外してください。
remediation-unknown = 手順1〜6で原因が見つかりません。セキュリティエージェントの上書きインストールで切り分けを行い、その後サポート向けの情報を取得してください。
remediation-awaiting_recheck = 現在の情報では失敗している手順はありませんが、その情報は最後の再確認より前のもの(または再確認をまだ送っていない)ため、手順1〜6はまだ除外できません。エージェントが再確認に応答するのを待ってください。応答がない場合は、rollcall-agent が動作し接続しているかを確認してください。
remediation-no_data = プローブから手順1〜6のチェック結果が報告されていないため、これらの手順について判断できません。rollcall-agent が動作し接続しているか、そのバージョンがすべてのチェックを実行するかを確認し、ログを確認してください。
remediation-probe_error = プローブで一部のチェックを実行できなかったため、その手順が原因かどうか判断できません。これはサポートに伝える原因ではありません。プローブの製品アダプタやその対応付け、または読み込む製品状態の取得元(存在しない、読めない、解析できない)を修正してから、再確認してください。エラーになったチェックとそのメッセージは上に記載しています。

## チェック名
check-version = インストール済みバージョン
check-license = ライセンス
check-update_permission = アップデート設定権限
check-update_source = アップデート元
check-certificates = 証明書
check-connectivity = 接続
check-system_requirements = システム要件

## チェックの結果
status-pass = 成功
status-warn = 警告
status-fail = 失敗
status-error = 実行できず
status-unspecified = 結果なし

## レポート
report-title = サポート向けレポート:セキュリティエージェントのアップグレードが完了しない
report-rollout = ロールアウト { $id }(目標 { $target }、開始 { $started })
report-generated = 作成日時 { $at }
report-affected-heading = 現象発生台数
report-affected = 全クライアント { $total } 台中 { $count } 台でアップグレードが完了していません。
report-by-label-heading = ラベル別の発生台数
report-fleet-cause = 全体の原因: { $cause }。ほぼすべての未完了エージェントがこのチェックに失敗しています。端末ごとではなく一括で対処してください。
report-update-agents-heading = アップデートエージェント
report-update-agents-none = このロールアウトにアップデートエージェントはありません。
report-update-agent-line = { $hostname }({ $address }):{ $state }、クライアント { $blocks } 台を妨げています
report-update-agent-contested = 同じアドレスを { $claimants } も申告しています。申告が1台になるまで、そのクライアントは update_agent_conflict です
report-ua-completed = アップグレード完了
report-ua-not-completed = アップグレード未完了
report-differences-heading = 現象が発生するエージェントとの差異
report-differences-none = 現象が発生するエージェントと完了したエージェントを分ける属性はありません。
report-difference-line = { $attribute } = { $value }:未完了 { $stragglers_total } 台中 { $stragglers } 台、完了 { $completed_total } 台中 { $completed } 台
report-update-now-heading = 「今すぐアップデート」の結果
report-update-now-agent = 常駐アイコンの[今すぐアップデート]:{ $tried } 台で実行し、うち { $completed } 台がその後 { $window } 以内に目標バージョンを報告。{ $refused } 台は実行を拒否
report-update-now-server = サーバからの手動アップデート通知:{ $tried } 台で実行し、うち { $completed } 台がその後 { $window } 以内に目標バージョンを報告。{ $refused } 台は通知を拒否
report-update-now-note = 台数はエージェント単位で、その後にエージェントが送ったレポートから数えています。agent.toml に update_command がないエージェント(または通知の期限切れ・処理中)は拒否として数え、実施には含めません。
report-clock-skew-heading = 時計がずれているエージェント
report-clock-skew-ahead = { $hostname }:時計がコーディネーターより { $amount } 進んでいます
report-clock-skew-behind = { $hostname }:時計がコーディネーターより { $amount } 遅れています
report-clock-skew-note = rollcall はこれらのレポートの時刻をコーディネーターの時計で付け直しています。端末自身が示す時刻(ログ、製品の管理コンソール)はその分ずれています。
report-stragglers-heading = 未完了のエージェント
report-straggler-line = { $hostname } — { $cause }(手順 { $step }、{ $state })
report-straggler-line-no-step = { $hostname } — { $cause }(該当する手順なし、{ $state })
report-remediation = 対処方法
report-evidence = 根拠
report-signal = 兆候
report-inferred = 推定(読み取った値ではありません。Web管理コンソールで確認してください)
report-awaiting-restart-heading = 再起動待ち
report-awaiting-restart = { $count } 台はアップグレードがインストール済みで、Windows の再起動を待っています。未完了エージェントではなく、手順の対処は不要です(再起動のみ)。
signal-patterns_without_program = パターンファイルは届くがエージェントプログラムが届かない: 「アップデート設定権限」が「パターンファイル」になっている可能性(手順 2)
signal-activeupdate_source = 最後のアップデートはトレンドマイクロのアップデートサーバ(ActiveUpdate)から: エージェントプログラムと HotFix は配信されない(手順 3 「アップデート元」)
signal-upgrade_refused = エンドポイントがアップグレードを拒否: `Client environment is not qualified to do upgrade or hotfix`(手順 6 システム要件)
signal-server_certificate = エージェントのサーバ証明書(OfcNTCer.dat)が他と異なる: オンライン表示でも何も受け取れない(手順 5、製品Q&A KA-0007320)

## CLI
cli-completed = 完了
cli-pending = 保留
cli-stragglers = 未完了
cli-offline = オフライン
cli-fleet-cause = 全体の原因

## チェックのメッセージ:エージェントはコードとパラメータを送り、コーディネータが
## msg-CODE を表示する(server/src/check_text.rs)。$detail と $error は OS や
## パーサ自身の言葉で、そのまま引用する。
msg-separator = 。
list-separator = 、
value-permission-all_components = 「すべてのコンポーネント」
value-permission-pattern_files = 「パターンファイル」
value-permission-pattern_engine_driver = 「パターンファイル、エンジン、ドライバ」
value-source-standard = 「標準アップデート元」(製品サーバ)
value-source-custom = 「ユーザ指定アップデート元」
value-service-server = 製品サーバ
value-service-update_source = アップデート元
msg-product-unreadable = 製品の状態を読み取れません(`{ $detail }`)
msg-product-too-large = 製品の状態が上限の { $limit } バイトを超えています
msg-product-not-utf8 = 製品の状態が正しい UTF-8 ではありません({ $at } バイト目)
msg-product-too-deep = 製品の状態の入れ子が { $limit } 段を超えています
msg-product-syntax = 製品の状態が正しい { $format } ではありません(`{ $detail }`)
msg-product-not-a-table = 製品の状態の最上位がオブジェクトではありません({ $found })
msg-product-missing = 製品の状態に { $field } がありません
msg-product-wrong-type = 製品の状態の { $field } は { $expected } である必要がありますが、{ $found } です
msg-product-not-allowed = 製品の状態の { $field } の値「{ $value }」は、{ $allowed } のいずれでもありません
msg-product-invalid = 製品の状態の { $field } が不正です(`{ $detail }`)
msg-product-field-unreadable = 製品の状態の { $field } を読み取れません(`{ $detail }`)
msg-license-expired = ライセンスは { $expires } に期限が切れています({ $days } 日前)
msg-license-expiring = ライセンスは { $expires } に期限が切れます(あと { $days } 日、警告期間 { $warn_days } 日)
msg-license-valid = ライセンスは { $expires } まで有効です(残り { $days } 日)
msg-update-permission-ok = 「アップデート設定権限」は { $permission } です
msg-update-permission-wrong = 「アップデート設定権限」が { $permission } です。ポリシーでは { $required } が必要です
msg-version-no-target = インストール済みバージョンは { $installed } です(目標なし)
msg-version-at-target = インストール済みバージョン { $installed } は目標 { $target } 以上です
msg-version-behind = インストール済みバージョン { $installed } は目標 { $target } より古いです
msg-version-bad-target = 目標バージョンが不正です(`{ $detail }`)
msg-update-source-no-expectation = 「アップデート元」は { $source } { $address } です。このエンドポイントのラベルに対して、ポリシーは想定するアップデート元を指定していません
msg-update-source-as-expected = 「アップデート元」は { $source } { $address } で、ポリシーの想定どおりです
msg-update-source-unexpected = 「アップデート元」が { $source } { $address } です。ポリシーの想定は { $expected_source } { $expected_address } です
msg-update-agent-serves-program = このアップデートエージェントは「セキュリティエージェントプログラムとHotFix」を配信しています
msg-update-agent-lacks-program = このアップデートエージェントで「セキュリティエージェントプログラムとHotFix」が有効になっていないため、クライアントはアップグレードできません
msg-certificates-none-required = ポリシーで必要な証明書はありません
msg-certificates-store-unreadable = 証明書ストアを読み取れません(`{ $detail }`)
msg-certificates-store-not-read = 証明書ストアが読み取られていません
msg-certificates-present = 必要な証明書 { $count } 件はすべて { $store } にあり、有効です
msg-certificates-missing = { $store } に不足している証明書:{ $names }
msg-certificates-expired = 期限切れの証明書:{ $names }
msg-certificates-acs-ready = { $os } は `Azure Code Signing` に対応済みです({ $why })
msg-certificates-acs-missing = { $os } には Apex One { $target }(ビルド 12011 以降)が必要とする `Azure Code Signing` 対応の更新プログラムがありません: { $kb } またはそれ以降の累積更新プログラムを適用してください
msg-certificates-acs-unknown = { $os } が `Azure Code Signing` に対応済みか判断できません({ $why }): Apex One { $target } の前に { $kb } またはそれ以降の累積更新プログラムが適用されていることを確認してください
msg-certificates-acs-unreadable = `Azure Code Signing` への対応状況を読み取れません(`{ $detail }`)
msg-certificates-acs-table = プローブに同梱の `Azure Code Signing` の表が不正です
msg-connectivity-not-probed = { $service } { $address } は確認されていません
msg-connectivity-unreachable = { $service } { $address } に接続できません(`{ $error }`)
msg-connectivity-reachable-tls = { $service } { $address } に接続できます(TLS ハンドシェイク { $ms } ミリ秒)
msg-connectivity-reachable-tcp = { $service } { $address } に接続できます(TCP { $ms } ミリ秒、暗号化なしの HTTP)
msg-system-requirements-met = このエンドポイントはポリシーのシステム要件を満たしています
msg-host-unreadable = 端末の情報を読み取れません(`{ $detail }`)
msg-os-unsupported = OS { $os } はポリシーの対応 OS({ $supported })ではありません
msg-os-version-unknown = os-release に VERSION_ID がないため、最小バージョン { $os } { $minimum } と比較できません
msg-os-too-old = OS { $os } { $version } は最小バージョン { $minimum } より古いです
msg-os-version-invalid = os-release の VERSION_ID が不正です(`{ $detail }`)
msg-os-build-unknown = OS がビルド番号を報告しないため、最小ビルド { $os } { $minimum } と比較できません
msg-os-build-too-old = OS { $os } のビルド { $build } は最小ビルド { $minimum } より古いです
msg-arch-unsupported = アーキテクチャ { $arch } はポリシーの対応アーキテクチャ({ $supported })ではありません
msg-disk-low = { $path } の空き容量が { $free } MiB で、最小の { $minimum } MiB を下回っています
msg-memory-low = メモリが { $total } MiB で、最小の { $minimum } MiB を下回っています
msg-check-crashed = チェックが予期せず失敗しました(`{ $detail }`)
msg-check-timed-out = { $budget } でタイムアウトしました

## 失敗したチェックを示さない原因の説明(コーディネータ側)
detail-no-results = プローブからチェック結果が報告されていません
detail-missing-checks = 結果が報告されていないチェック:{ $checks }
detail-conflict = { $count } 台のエージェントが { $address } のアップデートエージェントだと申告しています:{ $claimants }
detail-update-agent-offline = アップデートエージェント { $update_agent } がオフライン
detail-update-agent-lacks-program = アップデートエージェント { $update_agent } で「セキュリティエージェントプログラムとHotFix」が有効になっていない
detail-update-agent-behind = アップデートエージェント { $update_agent } 自体のアップグレードが完了していない
report-consequences = 以下はアップデートエージェント { $update_agent } に起因する結果で、別の原因ではありません(アップデートエージェントを直すと解消します):

## 手順8:ログ一式(rollcall collect)
report-bundle = 「アップデート失敗」に関するログを { $at } に取得済み:ファイル { $files } 件、{ $bytes } バイト(対象外 { $skipped } 件)。取得方法:`rollcall bundle get { $agent }`
report-bundle-none = ログはまだ取得されていません:`rollcall collect { $agent }`
report-bundles-summary = 現象が発生している { $total } 台中 { $count } 台から「アップデート失敗」に関するログを取得済みです(`rollcall collect`)。
report-roster = ロスター全体({ $source }、{ $age } 前に取得)では、管理対象エンドポイント { $listed } 台のうち { $count } 台でアップグレードが完了していない(未達 { $behind } 台、プローブがなくバージョン不明 { $no_probe } 台)。完了 { $completed } 台、プローブ稼働 { $probed } 台、ロスターにないプローブ { $unlisted } 台。
cause-no_probe = 製品の一覧にあるが、プローブがなくバージョンも不明
cause-no_probe-remediation = これらのエンドポイントにプローブ (rollcall-agent) をインストールするか、Apex One の管理コンソールで確認してください。
