// Removes the folders serverless-esbuild leaves in the system temp folder: it zips each function from a copy in
// <tmpdir>/<function>-<pid>-<ms>-<8 hex> and never deletes it (about 9 MB a function, 17 a package). Every command
// that packages (package, deploy, deploy function) runs in this one process, so the folders to remove are exactly
// those named with this process's pid and one of this service's function keys.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The folders of `functionKeys` that the process `pid` left in `dir`. */
function leftovers(dir, functionKeys, pid) {
  const pattern = new RegExp(`^(.+)-${pid}-\\d{13}-[0-9a-f]{8}$`);
  let entries;
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return entries
    .filter((name) => {
      const match = pattern.exec(name);
      return match !== null && functionKeys.includes(match[1]);
    })
    .map((name) => path.join(dir, name));
}

class TempCleanup {
  constructor(serverless) {
    this.serverless = serverless;
    const clean = () => this.clean();
    this.hooks = {
      'after:package:createDeploymentArtifacts': clean,
      'after:deploy:function:packageFunction': clean,
    };
    // A failed package never reaches the hooks above.
    process.once('exit', clean);
  }

  clean() {
    const functionKeys = Object.keys(this.serverless.service.functions ?? {});
    for (const folder of leftovers(os.tmpdir(), functionKeys, process.pid)) {
      fs.rmSync(folder, { recursive: true, force: true });
    }
  }
}

module.exports = TempCleanup;
module.exports.leftovers = leftovers;
