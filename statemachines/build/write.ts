// `npm run asl`: writes statemachines/*.asl.json and statemachines/functions.json from the builder.
import { writeGeneratedFiles } from './index.js';

for (const file of await writeGeneratedFiles()) console.log(`wrote statemachines/${file}`);
