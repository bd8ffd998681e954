// Refuses to deploy while a parameter still has its packaging placeholder: the defaults exist so that the template
// packages offline, and deploying them would create a pipeline pointed at nothing.
'use strict';

/** Placeholders are recognisable: account 000000000000, ids of zeros, the example endpoint. */
const PLACEHOLDER = /000000000000|0000000000000000|\.example\./;

class PlaceholderGuard {
  constructor(serverless) {
    this.serverless = serverless;
    this.hooks = {
      'before:deploy:deploy': () => this.check(),
      'before:deploy:function:initialize': () => this.check(),
    };
  }

  check() {
    const params = this.serverless.configurationInput?.params ?? {};
    const stage = this.serverless.service.provider.stage;
    const resolved = { ...(params.default ?? {}), ...(params[stage] ?? {}) };
    // Command-line --param values win over the file's.
    for (const pair of [].concat(this.serverless.processedInput?.options?.param ?? [])) {
      const at = String(pair).indexOf('=');
      if (at > 0) resolved[String(pair).slice(0, at)] = String(pair).slice(at + 1);
    }
    const left = Object.entries(resolved)
      .filter(([, value]) => PLACEHOLDER.test(JSON.stringify(value)))
      .map(([name]) => name);
    if (left.length > 0) {
      throw new this.serverless.classes.Error(
        `refusing to deploy stage ${stage}: these params still hold their packaging placeholders: ${left.join(', ')}. ` +
          'Set them under params.<stage> in the configuration or with --param="name=value" (see docs/aws.md).',
      );
    }
  }
}

module.exports = PlaceholderGuard;
module.exports.PLACEHOLDER = PLACEHOLDER;
