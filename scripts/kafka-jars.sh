#!/usr/bin/env bash
# Fetch Apache Kafka's broker jars from Maven Central into a cache keyed by the version, once.
# Maven keeps its own cache in ~/.m2, so on a machine that has fetched them before this is quick
# and offline. Prints the directory that holds the jars.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
pom=$here/tests/support/kafka-broker/pom.xml
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom")
cache=${DESKSTREAM_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deskstream}/kafka-$version
if [ ! -f "$cache/.complete" ]; then
  command -v mvn >/dev/null || { echo "kafka-jars: mvn is needed (apt-get install maven)" >&2; exit 1; }
  command -v java >/dev/null || { echo "kafka-jars: java 17 is needed" >&2; exit 1; }
  rm -rf "$cache"
  mkdir -p "$cache"
  echo "kafka-jars: fetching Apache Kafka $version into $cache" >&2
  mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$cache/lib" >&2
  touch "$cache/.complete"
fi
echo "$cache/lib"
