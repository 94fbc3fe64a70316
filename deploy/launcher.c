// SPDX-License-Identifier: MIT
//
// /earthworm in an image built without `deno compile`: the image's entrypoint
// is the same in both kinds of image, but here it is this small program,
// which replaces itself (execv, no shell, no extra process) with
//
//   /usr/local/bin/deno run --v8-flags=--heap-growing-percent=50,--max-semi-space-size=4 --allow-all --cached-only /opt/earthworm/app/main.js ARGS...
//
// (the V8 flag: see V8_FLAGS in tests/earthworm_process.ts and README.md, "Memory")
//
// DENO_DIR is always the image's own: the npm packages cached there at build
// time (read-only at run time; Deno keeps its other caches in memory then).
// deploy/build_image.sh compiles it; see README.md, "The image".
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DENO "/usr/local/bin/deno"
#define MAIN "/opt/earthworm/app/main.js"
#define DENO_DIR "/opt/earthworm/deno_dir"

static const char *const PREFIX[] = {DENO, "run", "--v8-flags=--heap-growing-percent=50,--max-semi-space-size=4", "--allow-all", "--cached-only", MAIN};
#define NPREFIX (sizeof PREFIX / sizeof PREFIX[0])

int main(int argc, char **argv) {
  char **args = calloc(NPREFIX + (size_t)argc, sizeof *args);
  if (args == NULL) {
    perror("earthworm: calloc");
    return 1;
  }
  memcpy(args, PREFIX, sizeof PREFIX);
  for (int i = 1; i < argc; i++) args[NPREFIX + (size_t)i - 1] = argv[i];
  setenv("DENO_DIR", DENO_DIR, 1);
  setenv("DENO_NO_UPDATE_CHECK", "1", 1);
  execv(DENO, args);
  fprintf(stderr, "earthworm: cannot run \"%s\": ", DENO);
  perror(NULL);
  return 127;
}
