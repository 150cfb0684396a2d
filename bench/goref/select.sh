# Sourced by bench/*.sh: builds the Go reference and names its programs. With SRC and BUILD
# set, it leaves
#   GOREF_PROXY  GOREF_SOCKBUF  GOREF_CLIENT   paths of the proxy, sockbuf and sockclient
#   GOREF_HTTPSRV                              an array: the HTTP server and its arguments
#                                              before -http
#   GOREF_WHAT                                 which reference, for the log
# By default the reference is bench/goref, built into $BUILD/goref/bin. ANCHOR_SRC=DIR runs
# anchor-go from DIR instead (the prototype bench/goref was checked against for equal
# figures): DIR is read-only, so it is copied to $BUILD/anchor-go and built there once.
goref_select() {
  if [ -z "${ANCHOR_SRC:-}" ]; then
    bash "$SRC/bench/goref/build.sh" "$BUILD/goref/bin" >&2
    local bin=$BUILD/goref/bin
    GOREF_PROXY=$bin/proxy GOREF_SOCKBUF=$bin/sockbuf GOREF_CLIENT=$bin/sockclient
    GOREF_HTTPSRV=("$bin/httpsrv")
    GOREF_WHAT="bench/goref"
    return
  fi
  local dir=$BUILD/anchor-go
  if [ ! -x "$dir/bin/wgsocks-go" ]; then
    rm -rf "$dir" && cp -r "$ANCHOR_SRC" "$dir" && chmod -R u+w "$dir"
    (cd "$dir" && bash build.sh > /dev/null)
  fi
  GOREF_PROXY=$dir/bin/wgsocks-go GOREF_SOCKBUF=$dir/bin/sockbuf GOREF_CLIENT=$dir/bin/sockbench
  GOREF_HTTPSRV=("$dir/bin/benchsrv" -source '' -sink '')
  GOREF_WHAT="anchor-go from $ANCHOR_SRC"
}
goref_select
