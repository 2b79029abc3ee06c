// One execution of a state machine in aws-local-stepfunctions (an existing interpreter of the
// Amazon States Language), for local/stepfunctions.py, which starts it with Node 22 from this
// folder's node_modules and this request as JSON on stdin:
//
//   {"definition": the deployed definition (validated whole, never run here),
//    "local_definition": the definition to run, "input": the execution's input,
//    "context": the context object's own fields (Execution.Name, StateMachine...),
//    "lambda_endpoint": "http://127.0.0.1:PORT" (the Lambda Invoke API, SAM CLI's service),
//    "task_states": the Task states whose Resource is arn:aws:states:::lambda:invoke}
//
// Each of those Task states is overridden (taskResourceLocalHandlers: the state's input, after
// its Parameters, arrives as the first argument) by what the lambda:invoke integration does:
// Invoke FunctionName with Payload, answer {ExecutedVersion, Payload, StatusCode}; a function
// error fails the state with the function's errorType as its error name and the error document
// as its cause, as Step Functions does, so the definition's Retry fields apply as on AWS.
// The result goes to stdout as one JSON line: {"status": "SUCCEEDED", "output": ...} or
// {"status": "FAILED", "error": name, "cause": text}.
import { StateMachine } from 'aws-local-stepfunctions';

const INVOKE_PATH = '/2015-03-31/functions/';
// the error names Step Functions gives the Lambda service's own failures
const SERVICE_ERRORS = {
  400: 'Lambda.InvalidRequestContentException',
  404: 'Lambda.ResourceNotFoundException',
  429: 'Lambda.TooManyRequestsException',
};

function failure(name, cause) {
  const error = new Error(cause);
  error.name = name;
  return error;
}

function lambdaInvoke(endpoint) {
  return async (input) => {
    const url = endpoint + INVOKE_PATH + encodeURIComponent(input.FunctionName) + '/invocations';
    let response;
    try {
      response = await fetch(url, { method: 'POST', body: JSON.stringify(input.Payload ?? {}) });
    } catch (error) {
      throw failure('Lambda.SdkClientException', String(error));
    }
    const body = await response.text();
    if (response.status !== 200) {
      throw failure(SERVICE_ERRORS[response.status] ?? 'Lambda.ServiceException', body);
    }
    if (response.headers.get('x-amz-function-error')) {
      throw failure(JSON.parse(body).errorType ?? 'Lambda.Unknown', body);
    }
    return { ExecutedVersion: '$LATEST', Payload: JSON.parse(body), StatusCode: 200 };
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

const request = await readStdin();
let result;
try {
  new StateMachine(request.definition); // asl-validator: the deployed definition is valid ASL
  const machine = new StateMachine(request.local_definition);
  const invoke = lambdaInvoke(request.lambda_endpoint);
  const handlers = Object.fromEntries(request.task_states.map((name) => [name, invoke]));
  const execution = machine.run(request.input, {
    context: request.context,
    overrides: { taskResourceLocalHandlers: handlers },
  });
  result = { status: 'SUCCEEDED', output: await execution.result };
} catch (error) {
  const cause = error.cause ?? error; // ExecutionError wraps what failed the execution
  result = { status: 'FAILED', error: cause.name ?? 'Error', cause: cause.message ?? String(cause) };
}
process.stdout.write(JSON.stringify(result) + '\n');
